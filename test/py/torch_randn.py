"""Prints torch.randn(shape) after torch.manual_seed(seed), as JSON: what a Generator must draw."""
import json
import sys

import torch

seed = int(sys.argv[1])
shape = [int(s) for s in sys.argv[2].split(",")]
torch.manual_seed(seed)
print(json.dumps(torch.randn(*shape).flatten().tolist()))
