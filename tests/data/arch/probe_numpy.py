#!/usr/bin/python3
"""Independent reference for the validation probe (tests/unit/test_engine_validate.c).

Recomputes, with plain numpy loops written from the Keras documentation (no
engine code), the probe output eng_validate reports for fixtures whose layout
paths the PyTorch golden vectors do not cover: Keras 1 'th' (channels_first)
kernels stored (out,in,kh,kw), a tf.keras DepthwiseConv2D with
data_format=channels_first, Keras 1 non-square kernels (nb_row != nb_col),
Keras 1 BatchNormalization (running_std used as the variance, as Keras 1.1+
and Keras 2's legacy loader do).
Probe input: x[i] = float32(0.5*sin(0.1*i)) in the model's input layout.
Writes probe_numpy.json next to this file. Run: /usr/bin/python3 probe_numpy.py [fixtures_dir]
"""
import json, os, sys
import h5py
import numpy as np

FX = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("STRATA_FIXTURES", "/work/shared/fixtures")) + "/keras/"

def probe(n):
    return (0.5 * np.sin(0.1 * np.arange(n))).astype(np.float32).astype(np.float64)

def corr_chw(x, w, b):          # x (C,H,W), w (O,C,kh,kw), valid, stride 1
    C, H, W = x.shape; O, _, kh, kw = w.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    y = np.zeros((O, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum('chw,oc->ohw', x[:, i:i + Ho, j:j + Wo], w[:, :, i, j])
    return y + b[:, None, None]

def corr_hwc(x, w, b):          # x (H,W,C), w (kh,kw,C,O), valid, stride 1
    H, W, C = x.shape; kh, kw, _, O = w.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    y = np.zeros((Ho, Wo, O))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum('hwc,co->hwo', x[i:i + Ho, j:j + Wo, :], w[i, j])
    return y + b

def maxpool(x, k, axes):        # non-overlapping k x k over the two given axes
    x = np.moveaxis(x, axes, (0, 1))
    A, B = x.shape[0] // k, x.shape[1] // k
    x = x[:A * k, :B * k].reshape((A, k, B, k) + x.shape[2:]).max(axis=(1, 3))
    return np.moveaxis(x, (0, 1), axes)

relu = lambda v: np.maximum(v, 0)
sigmoid = lambda v: 1 / (1 + np.exp(-v))
def softmax(v):
    e = np.exp(v - v.max()); return e / e.sum()

out = {}

# Keras 1.0.4 cifar10 'th'
h = h5py.File(FX + "k1_1.0.4_weights_cifar10_cnn_th.h5", "r")
g = lambda l, s: np.array(h[l][l + s], dtype=np.float64)
y = probe(3 * 32 * 32).reshape(3, 32, 32)
y = relu(corr_chw(y, g("convolution2d_1", "_W"), g("convolution2d_1", "_b")))
y = relu(corr_chw(y, g("convolution2d_2", "_W"), g("convolution2d_2", "_b")))
y = maxpool(y, 2, (1, 2))
y = relu(corr_chw(y, g("convolution2d_3", "_W"), g("convolution2d_3", "_b")))
y = relu(corr_chw(y, g("convolution2d_4", "_W"), g("convolution2d_4", "_b")))
y = maxpool(y, 2, (1, 2)).reshape(-1)          # Keras 1 Flatten of (C,H,W)
y = relu(y @ g("dense_1", "_W") + g("dense_1", "_b"))
y = softmax(y @ g("dense_2", "_W") + g("dense_2", "_b"))
out["k1_1.0.4_weights_cifar10_cnn_th.h5"] = {"json": "k1_1.0.4_cifar10_cnn_th.model.json", "probe": list(y[:16])}

# tf.keras 2.2.4-tf DepthwiseConv2D channels_first + channels_last pad/upsample/crop/pool
h = h5py.File(FX + "tfk_2.2.4-tf_full_depthwise_cnn.h5", "r")["model_weights"]
gw = lambda l, n: np.array(h[l][l][n], dtype=np.float64)
def block(x, name):
    k, b = gw(name, "depthwise_kernel:0"), gw(name, "bias:0")
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1))); y = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            y += xp[:, i:i + H, j:j + W] * k[i, j, :, 0][:, None, None]
    y = np.tanh(y + b[:, None, None])
    y = np.pad(y, ((3, 3), (3, 3), (0, 0)))    # channels_last layers: last axis is "channels"
    y = y.repeat(2, axis=0).repeat(2, axis=1)[1:-1, 1:-1, :]
    return maxpool(y, 2, (0, 1))
y = block(probe(300).reshape(3, 10, 10), "depthwise_conv2d_4")
y = block(y, "depthwise_conv2d_5").max(axis=(0, 1))
out["tfk_2.2.4-tf_full_depthwise_cnn.h5"] = {"json": None, "probe": list(y[:16])}

# Keras 1.1.2 tf: nb_row 3 / nb_col 2 kernels
h = h5py.File(FX + "k1_1.1.2_full_cnn_tf.h5", "r")["model_weights"]
g = lambda l, s: np.array(h[l][l + s], dtype=np.float64)
y = probe(8 * 8 * 3).reshape(8, 8, 3)
y = sigmoid(corr_hwc(y, g("convolution2d_1", "_W:0"), g("convolution2d_1", "_b:0")))
y = relu(corr_hwc(y, g("convolution2d_2", "_W:0"), g("convolution2d_2", "_b:0")))
y = maxpool(y, 5, (0, 1)).reshape(-1)
y = relu(y @ g("dense_1", "_W:0") + g("dense_1", "_b:0"))
y = softmax(y @ g("dense_2", "_W:0") + g("dense_2", "_b:0"))
out["k1_1.1.2_full_cnn_tf.h5"] = {"json": None, "probe": list(y[:16])}

# Keras 1.2.2: Dense -> Reshape -> BatchNormalization(mode 0, running_std) -> Conv2D
h = h5py.File(FX + "k1_1.2.2_full_dense_bn_conv2d_tf.h5", "r")["model_weights"]
g = lambda l, s: np.array(h[l][l + s], dtype=np.float64)
y = probe(100) @ g("dense_1", "_W:0") + g("dense_1", "_b:0")
y = y.reshape(7, 7, 10)
bn = "batchnormalization_1"
y = g(bn, "_gamma:0") * (y - g(bn, "_running_mean:0")) / np.sqrt(g(bn, "_running_std:0") + 1e-3) + g(bn, "_beta:0")
y = corr_hwc(y, g("convolution2d_1", "_W:0"), g("convolution2d_1", "_b:0")).reshape(-1)
out["k1_1.2.2_full_dense_bn_conv2d_tf.h5"] = {"json": None, "probe": list(y[:16])}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe_numpy.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
