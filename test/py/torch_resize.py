"""Resizes a .npy batch as the published code resizes faces (bicubic, antialiased) and saves it."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

x = torch.from_numpy(np.load(sys.argv[1]))
height, width = int(sys.argv[3]), int(sys.argv[4])
np.save(sys.argv[2], F.interpolate(x, size=(height, width), mode="bicubic", antialias=True).numpy())
