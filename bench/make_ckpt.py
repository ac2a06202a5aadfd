#!/usr/bin/python3
"""bench/make_ckpt.py — write a Keras 2 save_weights checkpoint of ~SIZE MiB.

Usage: make_ckpt.py OUT.h5 SIZE_MIB
A few big Dense layers (4096 x units float32 kernels + bias), in the layout
Keras 2.2.4 save_weights writes (root layer_names/backend/keras_version,
one group per layer with weight_names, datasets <layer>/<layer>/kernel:0,
contiguous, unfiltered). Values are random normal * 0.01 (finite). Written
to OUT.h5.tmp and renamed, so a cached file is always complete.
"""
import os
import sys

import h5py
import numpy as np


def main():
    out, mib = sys.argv[1], int(sys.argv[2])
    rows, per_layer_mib = 4096, 32
    nlayers = max(1, mib // per_layer_mib)
    units = per_layer_mib * (1 << 20) // 4 // rows   # 2048 for 32 MiB
    rng = np.random.default_rng(7)
    names = ["dense_%d" % (i + 1) for i in range(nlayers)]
    tmp = out + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = np.bytes_("tensorflow")
        f.attrs["keras_version"] = np.bytes_("2.2.4")
        for n in names:
            g = f.create_group(n)
            g.attrs["weight_names"] = np.array([("%s/kernel:0" % n).encode(), ("%s/bias:0" % n).encode()])
            k = (rng.standard_normal((rows, units), dtype=np.float32) * 0.01)
            g.create_dataset("%s/kernel:0" % n, data=k)
            g.create_dataset("%s/bias:0" % n, data=np.zeros(units, dtype=np.float32))
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
