"""Random ParseNet weights in the layout of parsing_parsenet.pth, what the project's eager
network makes of a face with them, and paste masks of crafted label scores, for
test/parsing.test.ts.

    python3 parsing_reference.py OUT

Writes OUT/parsing_parsenet.pth (a plain state dict with batch norm's num_batches_tracked,
as released), OUT/face.npy ([1, 3, 512, 512] in 8-bit levels / 255), OUT/scores.npy (the
eager network's label scores of that face, [1, 19, 512, 512]), OUT/crafted.npy (label
scores [1, 19, 96, 128] drawn by hand: skin, an eye, hair, neck, an earring, background)
and OUT/crafted_mask.npy ([1, 1, 96, 128]: the mask the published helper makes of them,
computed here in numpy from its description: labels 1-13 and 15 are face, two 101 x 101
Gaussian blurs with sigma 11 and mirrored borders, the outer 10 pixels zero).
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from parsenet import ParseNet  # noqa: E402
from photo_layers import randomise_batch_norm_statistics  # noqa: E402

FACE_LABELS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]


def published_layout(network):
    """The state dict as the released file holds it: every batch norm with its counter."""
    state = {}
    for name, tensor in network.state_dict().items():
        state[name] = tensor
        if name.endswith("running_var"):
            state[name[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def gaussian(size, sigma):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-x * x / (2 * sigma * sigma))
    return taps / taps.sum()


def mirrored(index, size):
    """Index into a row of `size`, mirrored without repeating the edge, as often as needed."""
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index >= size, period - index, index)


def blur(mask, size, sigma):
    taps = gaussian(size, sigma)
    half = size // 2
    h, w = mask.shape
    out = np.zeros_like(mask)
    for k in range(size):
        out += taps[k] * mask[:, mirrored(np.arange(w) + k - half, w)]
    rows = np.zeros_like(out)
    for k in range(size):
        rows += taps[k] * out[mirrored(np.arange(h) + k - half, h), :]
    return rows


def paste_mask(scores):
    labels = scores[0].argmax(0)
    mask = np.isin(labels, FACE_LABELS).astype(np.float64)
    mask = blur(blur(mask, 101, 11.0), 101, 11.0)
    mask[:10, :] = 0
    mask[-10:, :] = 0
    mask[:, :10] = 0
    mask[:, -10:] = 0
    return mask[None, None]


def crafted_scores():
    h, w = 96, 128
    y, x = np.mgrid[0:h, 0:w]
    labels = np.zeros((h, w), dtype=np.int64)
    labels[y < 20] = 18                                          # hat
    labels[((x - 64) / 40.0) ** 2 + ((y - 50) / 34.0) ** 2 < 1] = 1  # skin
    labels[(y >= 20) & (y < 30) & (np.abs(x - 64) < 45)] = 17    # hair across the forehead
    labels[((x - 50) / 6.0) ** 2 + ((y - 45) / 4.0) ** 2 < 1] = 4  # an eye
    labels[(y > 84) & (np.abs(x - 64) < 20)] = 14                # neck
    labels[(np.abs(x - 22) < 3) & (np.abs(y - 55) < 3)] = 15     # an earring
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 0.1, (1, 19, h, w))
    scores[0, labels, y, x] += 3.0
    return scores.astype(np.float32)


def main():
    out_dir = sys.argv[1]
    torch.manual_seed(15)
    network = randomise_batch_norm_statistics(ParseNet().eval(), torch.Generator().manual_seed(3))
    torch.save(published_layout(network), os.path.join(out_dir, "parsing_parsenet.pth"))
    face = torch.round(torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(5)) * 255) / 255
    with torch.no_grad():
        scores = network((face - 0.5) / 0.5)
    np.save(os.path.join(out_dir, "face.npy"), face.numpy())
    np.save(os.path.join(out_dir, "scores.npy"), scores.numpy())
    crafted = crafted_scores()
    np.save(os.path.join(out_dir, "crafted.npy"), crafted)
    np.save(os.path.join(out_dir, "crafted_mask.npy"), paste_mask(crafted).astype(np.float32))


if __name__ == "__main__":
    main()
