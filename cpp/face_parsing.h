// The published paste mask's face part: ParseNet labels each pixel of a restored face, the
// face's labels become a mask, and that mask is blurred wide so hair, neck and hat edges
// keep the photo's pixels while the skin takes the restored face's.
#pragma once

#include <torch/script.h>

namespace difface {

// Published: the parser always sees 512 x 512 faces and runs in float32.
constexpr int64_t kParseSize = 512;

// faces: RGB in [0, 1], [N, 3, H, W], on the parser's device, read as the 8-bit faces the
// published tool keeps (rounded), resized bilinearly to 512 when they are not that size.
// Returns the parser's scores of the 19 labels, [N, 19, 512, 512], in float32.
torch::Tensor parseFaces(torch::jit::Module& parser, const torch::Tensor& faces);

// Label scores [N, 19, S, S] -> masks [N, 1, S, S] in float64, as the published helper makes
// them: each pixel's best label, labels 1-13 and 15 are face (1), the rest (background, 14
// neck, 16 cloth, 17 hair, 18 hat) are not (0); two 101 x 101 Gaussian blurs with sigma 11
// (borders mirrored, as OpenCV's default); the outer 10 pixels set to 0.
torch::Tensor faceMasks(const torch::Tensor& scores);

// OpenCV's Gaussian blur of masks [N, 1, H, W] (any floating dtype) with a k x k window (k
// odd): sigma from k when `sigma` is 0, OpenCV's fixed small kernels for k <= 7 then; the
// border mirrored without repeating the edge (BORDER_REFLECT_101).
torch::Tensor gaussianBlurLikeOpenCv(const torch::Tensor& masks, int64_t k, double sigma);

}  // namespace difface
