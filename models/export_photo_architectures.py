"""Weight-less TorchScript exports of the whole-photo networks, as the package ships them.

    python3 models/export_photo_architectures.py --out models/architectures/photos

Writes DIR/background.pt (RRDBNet x2, filled at load from RealESRGAN_x2plus.pth) and
DIR/architecture.json, in the form models/export_architecture.py gives the restoration pair:
each export is the network's code with empty placeholders and the list of its state dict, and
is checked, filled again with its eager network's weights, to compute what the eager network
computes.
"""

import argparse
import datetime
import json
import os
import platform
import sys

import torch

from convert import package_version
from export_architecture import ARCHITECTURE_CARD, FORMAT, VERSION, entry, export_one
from rrdbnet import RRDBNet

BACKGROUND_CONFIG = {"network": "RRDBNet", "scale": 2, "features": 64, "blocks": 23, "growth": 32,
                     "checkpoint": "RealESRGAN_x2plus.pth"}


def export(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    background = RRDBNet().eval()
    # Small and odd-free (the network folds 2 x 2 cells), enough to see every layer at work.
    probe = torch.rand(1, 3, 12, 18, generator=torch.Generator().manual_seed(0))
    parameters = export_one(background, os.path.join(out_dir, "background.pt"), (probe,), "background")
    card = {
        "format": FORMAT,
        "version": VERSION,
        "description": "The published whole-photo networks without their weights: the Real-ESRGAN x2plus "
                       "background (RealESRGAN_x2plus.pth)",
        "networks": {"background": entry(out_dir, "background.pt", parameters, BACKGROUND_CONFIG)},
        "export": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "exporter": "difface " + package_version(),
            "createdAt": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        },
    }
    with open(os.path.join(out_dir, ARCHITECTURE_CARD), "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2)
        handle.write("\n")
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export the weight-less whole-photo networks for the difface engine.")
    parser.add_argument("--out", required=True, help="folder to write background.pt and architecture.json to")
    args = parser.parse_args(argv)
    card = export(args.out)
    print(f"wrote {args.out} ({card['networks']['background']['parameters']:,} background parameters to fill)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
