"""Prints the state-dict layout (name, shape, in order) and parameter counts of the networks
this project builds from a JSON file's unet_config and backbone_config."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "models"))

from swinir import SwinIR  # noqa: E402
from unet import UNetModel  # noqa: E402

with open(sys.argv[1], encoding="utf-8") as handle:
    document = json.load(handle)
unet = UNetModel(**document["unet_config"])
backbone = SwinIR(**document["backbone_config"])
print(json.dumps({
    "unet": [[name, list(t.shape)] for name, t in unet.state_dict().items()],
    "backbone": [[name, list(t.shape)] for name, t in backbone.state_dict().items()],
    "unet_parameters": sum(p.numel() for p in unet.parameters()),
    "backbone_parameters": sum(p.numel() for p in backbone.parameters()),
}))
