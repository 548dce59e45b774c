// Whole photos, the tensor side: cutting aligned faces out of a photo and pasting restored
// faces back in with a feathered mask. Geometry in pixel coordinates with pixel centres at
// integers, as OpenCV's warpAffine has them.
#pragma once

#include <array>
#include <vector>

#include <torch/types.h>

namespace difface {

// (x, y) -> (a x + b y + c, d x + e y + f).
using Affine = std::array<double, 6>;

// out[y][x] = image at outToImage(x, y), bilinear; where that falls outside the image, the
// border colour (blended at the edge, as a constant border is). image: [1, C, H, W].
torch::Tensor warpAffine(const torch::Tensor& image, const Affine& outToImage, int64_t height, int64_t width,
                         const std::vector<double>& border);

// Each face [1, 3, S, S] goes back into the canvas [1, 3, H, W] through canvasToFace, one
// after another, as the published helper pastes: the face and the canvas as 8-bit levels,
// the face warped back to 8-bit; a mask that covers the face's square, eroded and blurred in
// proportion to the face's size (so no seam shows), lowered to the face's parse mask
// ([1, 1, P, P] in the face's frame scaled to P, face_parsing.h) where one is given; the
// blend in float64, truncated to levels at the end. Outside the masks the canvas is
// untouched. `scale` is the canvas's scale to the photo the faces were cut from.
torch::Tensor pasteFaces(const torch::Tensor& canvas, const std::vector<torch::Tensor>& faces,
                         const std::vector<Affine>& canvasToFace, double scale,
                         const std::vector<torch::Tensor>& parseMasks = {});

}  // namespace difface
