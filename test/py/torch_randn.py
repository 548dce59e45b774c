"""Prints torch.randn(shape, device=D) after torch.manual_seed(seed), as JSON: what a Generator must draw."""
import json
import sys

import torch

seed = int(sys.argv[1])
shape = [int(s) for s in sys.argv[2].split(",")]
device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
torch.manual_seed(seed)
print(json.dumps(torch.randn(*shape, device=device).flatten().tolist()))
