"""Random RetinaFace weights in the layout of detection_Resnet50_Final.pth, and the faces the
published chain's detection makes of a small photo with them, for test/retinaface.test.ts.

    python3 retinaface_reference.py OUT HEIGHT WIDTH

Writes OUT/detection_Resnet50_Final.pth (names with DataParallel's "module." and batch norm's
num_batches_tracked, as a saved nn.DataParallel model has them), OUT/input.npy ([1, 3, H, W]
in 8-bit levels / 255) and OUT/faces.npy ([N, 15]: x1 y1 x2 y2 score, five points). The
detection is written here from the published code's description: enlarged with bilinear
interpolation to a short side of 640 (rounded to 8-bit levels), BGR minus (104, 117, 123),
prior boxes, decoding, score > 0.8, NMS at 0.4, every number divided by the enlargement, and
the helper's eye-distance filter.
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from photo_layers import randomise_batch_norm_statistics  # noqa: E402
from retinaface import RetinaFace  # noqa: E402


def random_network():
    torch.manual_seed(15)
    network = RetinaFace().eval()
    randomise_batch_norm_statistics(network, torch.Generator().manual_seed(16))
    with torch.no_grad():
        # Random heads put every score near 0.5; a push towards "face" on the two coarser levels
        # lifts a few hundred of their anchors over the threshold, overlapping, so decoding and
        # suppression have work to do.
        for head, push in zip(network.ClassHead, [0.0, 0.69, 0.7]):
            head.conv1x1.bias.copy_(torch.tensor([-push, push, -push, push]))
        # Points spread like a face's (eyes, nose, mouth corners, in tenths of the anchor's
        # size), so the helper's eye-distance filter keeps the larger faces and drops the smaller.
        face = [-3.0, -2.0, 3.0, -2.0, 0.0, 0.0, -2.0, 3.0, 2.0, 3.0]
        for head in network.LandmarkHead:
            head.conv1x1.bias.copy_(torch.tensor(face + face))
    return network


def priors(height, width):
    rows = []
    for step, sizes in zip([8, 16, 32], [[16, 32], [64, 128], [256, 512]]):
        for i in range(math.ceil(height / step)):
            for j in range(math.ceil(width / step)):
                for size in sizes:
                    rows.append([(j + 0.5) * step / width, (i + 0.5) * step / height, size / width, size / height])
    return torch.tensor(rows, dtype=torch.float32)


def nms(boxes, threshold):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept, gone = [], set()
    for i in range(len(boxes)):
        if i in gone:
            continue
        kept.append(i)
        for j in range(i + 1, len(boxes)):
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            if w * h / (area[i] + area[j] - w * h) > threshold:
                gone.add(j)
    return kept


def detect(network, image):
    h, w = image.shape[2:]
    scale = max(1.0, 640 / min(h, w))
    sh, sw = int(h * scale), int(w * scale)
    levels = torch.round(image * 255)
    if (sh, sw) != (h, w):
        levels = torch.round(F.interpolate(levels, size=(sh, sw), mode="bilinear", align_corners=False)).clamp(0, 255)
    x = levels.flip(1) - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    loc, conf, marks = network(x)
    loc, conf, marks = loc[0], conf[0], marks[0]
    p = priors(sh, sw)
    boxes = torch.cat([p[:, :2] + loc[:, :2] * 0.1 * p[:, 2:], p[:, 2:] * torch.exp(loc[:, 2:] * 0.2)], 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    boxes = boxes * torch.tensor([sw, sh, sw, sh], dtype=torch.float32)
    points = torch.cat([p[:, :2] + marks[:, 2 * k:2 * k + 2] * 0.1 * p[:, 2:] for k in range(5)], 1)
    points = points * torch.tensor([sw, sh] * 5, dtype=torch.float32)
    scores = conf[:, 1]
    keep = torch.nonzero(scores > 0.8).squeeze(1)
    keep = keep[torch.sort(scores[keep], descending=True, stable=True)[1]]
    rows = torch.cat([boxes[keep], scores[keep, None], points[keep]], 1).numpy()
    rows = rows[nms(rows[:, :4], 0.4)] / np.float32(scale)
    eye = np.hypot(rows[:, 6] - rows[:, 8], rows[:, 7] - rows[:, 9])
    return rows[eye >= 5], len(keep)


def main():
    out_dir, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    network = random_network()
    state = {"module." + name: tensor for name, tensor in network.state_dict().items()}
    for name in list(state):
        if name.endswith("running_var"):
            state[name[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
    torch.save(state, os.path.join(out_dir, "detection_Resnet50_Final.pth"))
    image = torch.round(torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(3)) * 255) / 255
    with torch.no_grad():
        faces, confident = detect(network, image)
    np.save(os.path.join(out_dir, "input.npy"), image.numpy())
    np.save(os.path.join(out_dir, "faces.npy"), faces.astype(np.float32))
    print(f"{confident} anchors over the threshold, {len(faces)} faces")


if __name__ == "__main__":
    main()
