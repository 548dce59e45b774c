"""Weight-less TorchScript exports of the whole-photo networks, as the package ships them.

    python3 models/export_photo_architectures.py --out models/architectures/photos

Writes DIR/background.pt (RRDBNet x2, filled at load from RealESRGAN_x2plus.pth),
DIR/detector.pt (RetinaFace with a ResNet-50 body, from detection_Resnet50_Final.pth),
DIR/parser.pt (ParseNet, from parsing_parsenet.pth) and DIR/architecture.json, in the form models/export_architecture.py gives the restoration pair:
each export is the network's code with empty placeholders and the list of its state dict, and
is checked, filled again with its eager network's weights, to compute what the eager network
computes.
"""

import argparse
import os
import sys

import torch

from convert import export_record, write_card
from export_architecture import ARCHITECTURE_CARD, FORMAT, VERSION, entry, export_one
from photo_layers import randomise_batch_norm_statistics
from parsenet import ParseNet
from retinaface import RetinaFace
from rrdbnet import RRDBNet

BACKGROUND_CONFIG = {"network": "RRDBNet", "scale": 2, "features": 64, "blocks": 23, "growth": 32,
                     "checkpoint": "RealESRGAN_x2plus.pth"}
DETECTOR_CONFIG = {"network": "RetinaFace", "body": "resnet50", "channels": 256, "checkpoint": "detection_Resnet50_Final.pth"}
PARSER_CONFIG = {"network": "ParseNet", "size": 512, "labels": 19, "checkpoint": "parsing_parsenet.pth"}


def export(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    background = RRDBNet().eval()
    # Small and odd-free (the network folds 2 x 2 cells), enough to see every layer at work.
    probe = torch.rand(1, 3, 12, 18, generator=torch.Generator().manual_seed(0))
    parameters = export_one(background, os.path.join(out_dir, "background.pt"), (probe,), "background")
    detector = randomise_batch_norm_statistics(RetinaFace().eval(), torch.Generator().manual_seed(1))
    # BGR with the means taken off, a size that is no multiple of the largest stride.
    image = torch.rand(1, 3, 70, 102, generator=torch.Generator().manual_seed(0)) * 255 - 120
    detector_parameters = export_one(detector, os.path.join(out_dir, "detector.pt"), (image,), "detector")
    parser = randomise_batch_norm_statistics(ParseNet().eval(), torch.Generator().manual_seed(2))
    # RGB in [-1, 1]; the smallest size the network's four halvings take, not square.
    face = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    parser_parameters = export_one(parser, os.path.join(out_dir, "parser.pt"), (face,), "parser")
    card = {
        "format": FORMAT,
        "version": VERSION,
        "description": "The published whole-photo networks without their weights: the Real-ESRGAN x2plus "
                       "background (RealESRGAN_x2plus.pth), the RetinaFace detector (detection_Resnet50_Final.pth) "
                       "and the ParseNet face parser (parsing_parsenet.pth)",
        "networks": {"background": entry(out_dir, "background.pt", parameters, BACKGROUND_CONFIG),
                     "detector": entry(out_dir, "detector.pt", detector_parameters, DETECTOR_CONFIG),
                     "parser": entry(out_dir, "parser.pt", parser_parameters, PARSER_CONFIG)},
        "export": export_record("exporter"),
    }
    write_card(out_dir, card, ARCHITECTURE_CARD)
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export the weight-less whole-photo networks for the difface engine.")
    parser.add_argument("--out", required=True, help="folder to write background.pt, detector.pt, parser.pt and architecture.json to")
    args = parser.parse_args(argv)
    card = export(args.out)
    networks = card["networks"]
    print(f"wrote {args.out} ({networks['background']['parameters']:,} background, "
          f"{networks['detector']['parameters']:,} detector and {networks['parser']['parameters']:,} parser parameters to fill)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
