#!/usr/bin/python3
"""bench/torch_bench.py — the PyTorch reference for bench/engine_bench.c.

Usage: torch_bench.py {mnist_like|mnist_cnn} BATCH [SECONDS]
Builds the same architecture by hand in torch (Conv2d/MaxPool2d/Linear,
same shapes as the Keras JSON), loads nothing (weights do not change the
time of a dense float forward pass), and times model(x) in eval mode under
torch.no_grad() with ONE thread (torch.set_num_threads(1)), after a warm-up,
as the median of 5 slices. Both memory formats are timed (contiguous NCHW
and channels_last) and the FASTER one is reported: the reference gets its
best case. Prints "img_per_s=<x> format=<nchw|channels_last>".
"""
import sys
import time

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.set_num_interop_threads(1)


def mnist_like():
    # tests/golden/mnist_like/model.json: Keras' mnist_cnn example shape
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(5 * 5 * 64, 10), nn.Softmax(dim=1))


def mnist_cnn():
    # /work/shared/fixtures/keras/k2_2.1.2_mnist_cnn.model.json
    return nn.Sequential(
        nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(30, 15, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(5 * 5 * 15, 128), nn.ReLU(),
        nn.Linear(128, 50), nn.ReLU(), nn.Linear(50, 10), nn.Softmax(dim=1))


def rate(model, x, secs):
    with torch.no_grad():
        t0 = time.perf_counter()
        n = 0
        while n < 3 or time.perf_counter() - t0 < 0.2:
            model(x)
            n += 1
        per = (time.perf_counter() - t0) / n
        iters = max(1, int(secs / 5 / per))
        rates = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(iters):
                model(x)
            rates.append(iters * x.shape[0] / (time.perf_counter() - t0))
    return sorted(rates)[2]


def main():
    name, batch = sys.argv[1], int(sys.argv[2])
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    torch.manual_seed(1)
    model = {"mnist_like": mnist_like, "mnist_cnn": mnist_cnn}[name]().eval()
    x = torch.rand(batch, 1, 28, 28)
    best = (0.0, "")
    for fmt in ("nchw", "channels_last"):
        if fmt == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        r = rate(model, x, secs)
        if r > best[0]:
            best = (r, fmt)
    print("img_per_s=%.1f format=%s" % best)


if __name__ == "__main__":
    main()
