#!/usr/bin/python3
"""Golden vectors for strata's CNN inference engine, computed by an oracle
that shares no code with it: PyTorch (float64) + numpy, with h5py writing the
legacy Keras 2 `save_weights` HDF5 layout.

    /usr/bin/python3 tests/golden/generate.py [--fixtures DIR] [--only CASE ...]

Every case is a small function returning (model_json, weights, x):
  model_json  a dict shaped like Keras 2.2.4+/tf.keras 2.x `model.to_json()`
  weights     {layer_name: [(weight_name, float32 ndarray, trainable), ...]}
              in Keras layer order / weight_names order
  x           the float32 NHWC input batch
The expected output is computed by `keras_forward`, a PyTorch interpreter of the
Keras config (float64). It asserts that each weight's shape is what the config
and the incoming tensor imply, so a config/weights mismatch cannot slip through.
`self_check()` first compares the torch paths against brute-force numpy loops
(TF "same" padding, depthwise, transpose conv by scatter, pooling).

Everything is seeded (seed = crc32 of the case name), so re-running rewrites
byte-identical files. See README.md for the folder format.
"""
import argparse
import json
import math
import os
import sys
import zlib

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS_VERSION = "2.4.0"
torch.set_num_threads(1)  # deterministic reductions

# --------------------------------------------------------------------------
# Keras JSON builders (tf.keras 2.4 get_config key order)
# --------------------------------------------------------------------------
GLOROT = {"class_name": "GlorotUniform", "config": {"seed": None}}
ZEROS = {"class_name": "Zeros", "config": {}}
ONES = {"class_name": "Ones", "config": {}}


def _base(name):
    return {"name": name, "trainable": True, "dtype": "float32"}


def _reg():
    return {"kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}


def pair(v):
    return [v, v] if isinstance(v, int) else list(v)


def _w(rng, shape, scale):
    """Random normal weights, float32. scale: number, or 'he' = sqrt(2/fan_in)."""
    if scale == "he":
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        scale = math.sqrt(2.0 / fan_in)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def conv2d(rng, name, cin, filters, kernel_size, strides=1, padding="valid",
           dilation_rate=1, activation="linear", use_bias=True, scale=0.5):
    k = pair(kernel_size)
    cfg = _base(name)
    cfg.update({"filters": filters, "kernel_size": k, "strides": pair(strides),
                "padding": padding, "data_format": "channels_last",
                "dilation_rate": pair(dilation_rate), "groups": 1,
                "activation": activation, "use_bias": use_bias,
                "kernel_initializer": GLOROT, "bias_initializer": ZEROS})
    cfg.update(_reg())
    w = [("kernel", _w(rng, (k[0], k[1], cin, filters), scale), True)]
    if use_bias:
        w.append(("bias", _w(rng, (filters,), 0.5 if scale == "he" else scale), True))
    return {"class_name": "Conv2D", "config": cfg}, w


def conv2d_transpose(rng, name, cin, filters, kernel_size, strides=1,
                     padding="valid", activation="linear", use_bias=True, scale=0.5):
    k = pair(kernel_size)
    layer, _ = conv2d(np.random.default_rng(0), name, cin, filters, kernel_size,
                      strides, padding, 1, activation, use_bias, scale)  # config only
    layer["class_name"] = "Conv2DTranspose"
    layer["config"]["output_padding"] = None
    del layer["config"]["groups"]
    w = [("kernel", _w(rng, (k[0], k[1], filters, cin), scale), True)]  # (kh,kw,OUT,IN)
    if use_bias:
        w.append(("bias", _w(rng, (filters,), scale), True))
    return layer, w


def depthwise_conv2d(rng, name, cin, kernel_size, depth_multiplier=1, strides=1,
                     padding="valid", dilation_rate=1, activation="linear",
                     use_bias=True, scale=0.5):
    k = pair(kernel_size)
    cfg = _base(name)
    cfg.update({"kernel_size": k, "strides": pair(strides), "padding": padding,
                "data_format": "channels_last", "dilation_rate": pair(dilation_rate),
                "groups": 1, "activation": activation, "use_bias": use_bias,
                "bias_initializer": ZEROS, "bias_regularizer": None,
                "activity_regularizer": None, "bias_constraint": None,
                "depth_multiplier": depth_multiplier,
                "depthwise_initializer": GLOROT, "depthwise_regularizer": None,
                "depthwise_constraint": None})
    w = [("depthwise_kernel", _w(rng, (k[0], k[1], cin, depth_multiplier), scale), True)]
    if use_bias:
        w.append(("bias", _w(rng, (cin * depth_multiplier,), scale), True))
    return {"class_name": "DepthwiseConv2D", "config": cfg}, w


def separable_conv2d(rng, name, cin, filters, kernel_size, depth_multiplier=1,
                     strides=1, padding="valid", dilation_rate=1,
                     activation="linear", use_bias=True, scale=0.5):
    k = pair(kernel_size)
    cfg = _base(name)
    cfg.update({"filters": filters, "kernel_size": k, "strides": pair(strides),
                "padding": padding, "data_format": "channels_last",
                "dilation_rate": pair(dilation_rate), "groups": 1,
                "activation": activation, "use_bias": use_bias,
                "depth_multiplier": depth_multiplier,
                "depthwise_initializer": GLOROT, "pointwise_initializer": GLOROT,
                "bias_initializer": ZEROS, "depthwise_regularizer": None,
                "pointwise_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "depthwise_constraint": None,
                "pointwise_constraint": None, "bias_constraint": None})
    w = [("depthwise_kernel", _w(rng, (k[0], k[1], cin, depth_multiplier), scale), True),
         ("pointwise_kernel", _w(rng, (1, 1, cin * depth_multiplier, filters), scale), True)]
    if use_bias:
        w.append(("bias", _w(rng, (filters,), scale), True))
    return {"class_name": "SeparableConv2D", "config": cfg}, w


def dense(rng, name, fin, units, activation="linear", use_bias=True, scale=0.5):
    cfg = _base(name)
    cfg.update({"units": units, "activation": activation, "use_bias": use_bias,
                "kernel_initializer": GLOROT, "bias_initializer": ZEROS})
    cfg.update(_reg())
    w = [("kernel", _w(rng, (fin, units), scale), True)]
    if use_bias:
        w.append(("bias", _w(rng, (units,), 0.5 if scale == "he" else scale), True))
    return {"class_name": "Dense", "config": cfg}, w


def batchnorm(rng, name, c, epsilon=0.001, axis=-1, center=True, scale=True):
    cfg = _base(name)
    cfg.update({"axis": axis, "momentum": 0.99, "epsilon": epsilon,
                "center": center, "scale": scale,
                "beta_initializer": ZEROS, "gamma_initializer": ONES,
                "moving_mean_initializer": ZEROS, "moving_variance_initializer": ONES,
                "beta_regularizer": None, "gamma_regularizer": None,
                "beta_constraint": None, "gamma_constraint": None})
    w = []
    if scale:
        w.append(("gamma", rng.uniform(0.5, 1.5, c).astype(np.float32), True))
    if center:
        w.append(("beta", _w(rng, (c,), 0.5), True))
    w.append(("moving_mean", _w(rng, (c,), 0.5), False))
    w.append(("moving_variance", rng.uniform(0.25, 2.0, c).astype(np.float32), False))
    return {"class_name": "BatchNormalization", "config": cfg}, w


def pool2d(cls, name, pool_size=2, strides=None, padding="valid"):
    cfg = _base(name)
    # Keras stores strides=None as pool_size after construction.
    cfg.update({"pool_size": pair(pool_size),
                "padding": padding,
                "strides": pair(strides if strides is not None else pool_size),
                "data_format": "channels_last"})
    return {"class_name": cls, "config": cfg}, []


def simple(cls, name, **extra):
    cfg = _base(name)
    cfg.update(extra)
    return {"class_name": cls, "config": cfg}, []


def global_pool(cls, name):
    return simple(cls, name, data_format="channels_last")


def flatten(name):
    return simple("Flatten", name, data_format="channels_last")


def dropout(name, rate, cls="Dropout"):
    return simple(cls, name, rate=rate, noise_shape=None, seed=None)


def activation(name, act):
    return simple("Activation", name, activation=act)


def relu_layer(name, max_value=None, negative_slope=0.0, threshold=0.0):
    return simple("ReLU", name, max_value=max_value,
                  negative_slope=negative_slope, threshold=threshold)


def zero_padding(name, padding):
    return simple("ZeroPadding2D", name, padding=padding, data_format="channels_last")


class Seq:
    """Sequential model. tf_input_layer=True writes the leading InputLayer
    entry that tf.keras 2.x puts into Sequential.to_json(); standalone Keras
    2.2.4 writes none. Either way save_weights omits it from layer_names."""

    def __init__(self, name, input_shape, tf_input_layer=False):
        self.name, self.input_shape = name, list(input_shape)
        self.tf_input_layer = tf_input_layer
        self.layers, self.weights = [], {}

    def add(self, lw):
        layer, w = lw
        if not self.layers:
            cfg = layer["config"]
            new = {"name": cfg["name"], "trainable": True,
                   "batch_input_shape": [None] + self.input_shape}
            new.update({k: v for k, v in cfg.items() if k not in new})
            layer["config"] = new
        self.layers.append(layer)
        self.weights[layer["config"]["name"]] = w
        return self

    def build(self):
        layers = list(self.layers)
        if self.tf_input_layer:
            first = layers[0]["config"]["name"]
            layers.insert(0, {"class_name": "InputLayer", "config": {
                "batch_input_shape": [None] + self.input_shape, "dtype": "float32",
                "sparse": False, "ragged": False, "name": first + "_input"}})
        model = {"class_name": "Sequential",
                 "config": {"name": self.name, "layers": layers},
                 "keras_version": KERAS_VERSION, "backend": "tensorflow"}
        return model, self.weights


class Func:
    """Functional model (tf.keras 2.4: class_name "Functional")."""

    def __init__(self, name):
        self.name, self.layers, self.weights, self.inputs = name, [], {}, []

    def input(self, name, shape):
        self.layers.append({"class_name": "InputLayer", "config": {
            "batch_input_shape": [None] + list(shape), "dtype": "float32",
            "sparse": False, "ragged": False, "name": name},
            "name": name, "inbound_nodes": []})
        self.weights[name] = []
        self.inputs.append(name)
        return name

    def __call__(self, lw, *inbound):
        layer, w = lw
        name = layer["config"]["name"]
        layer = dict(layer)
        layer["name"] = name
        layer["inbound_nodes"] = [[[src, 0, 0, {}] for src in inbound]]
        self.layers.append(layer)
        self.weights[name] = w
        return name

    def build(self, *outputs):
        model = {"class_name": "Functional", "config": {
            "name": self.name, "layers": self.layers,
            "input_layers": [[n, 0, 0] for n in self.inputs],
            "output_layers": [[n, 0, 0] for n in outputs]},
            "keras_version": KERAS_VERSION, "backend": "tensorflow"}
        return model, self.weights


# --------------------------------------------------------------------------
# PyTorch interpreter of a Keras config. Tensors are kept in Keras layout
# (NHWC / N,F); each spatial op permutes to NCHW for torch and back.
# --------------------------------------------------------------------------
def tf_same_pads(n, k, s, d=1):
    """TensorFlow 'SAME': out = ceil(n/s); extra padding goes bottom/right."""
    out = -(-n // s)
    eff = (k - 1) * d + 1
    total = max((out - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def activate(name, x):
    if name in ("linear", None):
        return x
    if name == "relu":
        return torch.relu(x)
    if name == "relu6":
        return torch.clamp(x, 0.0, 6.0)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "hard_sigmoid":          # Keras 2 / tf.keras 2.x definition
        return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softmax":
        return torch.softmax(x, dim=-1)
    if name == "elu":
        return F.elu(x, alpha=1.0)
    if name == "selu":
        return F.selu(x)
    if name == "softplus":
        return torch.logaddexp(x, torch.zeros_like(x))  # log(1+exp(x)), exact
    if name == "softsign":
        return x / (1.0 + torch.abs(x))
    if name == "swish":
        return x * torch.sigmoid(x)
    if name == "gelu":                  # approximate=False (Keras default)
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "exponential":
        return torch.exp(x)
    raise ValueError("unsupported activation %r" % name)


def to_nchw(x):
    return x.permute(0, 3, 1, 2)


def to_nhwc(x):
    return x.permute(0, 2, 3, 1)


def pad_for(x_nhwc, cfg, k, d):
    """Returns NCHW input padded per cfg['padding'] (TF rules)."""
    x = to_nchw(x_nhwc)
    if cfg["padding"] == "same":
        s = pair(cfg["strides"])
        t, b = tf_same_pads(x.shape[2], k[0], s[0], d[0])
        l, r = tf_same_pads(x.shape[3], k[1], s[1], d[1])
        x = F.pad(x, (l, r, t, b))
    else:
        assert cfg["padding"] == "valid", cfg["padding"]
    return x


def expect_shape(layer, what, arr, shape):
    if tuple(arr.shape) != tuple(shape):
        raise AssertionError("layer %r: %s shape %s, expected %s"
                             % (layer, what, tuple(arr.shape), tuple(shape)))


def run_layer(cls, cfg, w, ins, dtype):
    """One Keras layer. w: list of float32 ndarrays in weight_names order."""
    name = cfg.get("name")
    T = [torch.tensor(a, dtype=dtype) for a in w]
    x = ins[0]
    if cls in ("InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise",
               "GaussianDropout", "AlphaDropout"):
        return x                                            # identity at inference
    if cls in ("Conv2D", "Convolution2D"):
        assert cfg.get("data_format", "channels_last") == "channels_last"
        assert cfg.get("groups", 1) == 1
        k, s, d = pair(cfg["kernel_size"]), pair(cfg["strides"]), pair(cfg["dilation_rate"])
        cin = x.shape[3]
        expect_shape(name, "kernel", T[0], (k[0], k[1], cin, cfg["filters"]))
        wt = T[0].permute(3, 2, 0, 1)                       # (kh,kw,in,out)->(out,in,kh,kw)
        b = None
        if cfg.get("use_bias", True):
            expect_shape(name, "bias", T[1], (cfg["filters"],))
            b = T[1]
        y = F.conv2d(pad_for(x, cfg, k, d), wt, b, stride=s, dilation=d)
        return activate(cfg.get("activation"), to_nhwc(y))
    if cls == "DepthwiseConv2D":
        k, s, d = pair(cfg["kernel_size"]), pair(cfg["strides"]), pair(cfg["dilation_rate"])
        cin, dm = x.shape[3], cfg["depth_multiplier"]
        expect_shape(name, "depthwise_kernel", T[0], (k[0], k[1], cin, dm))
        # torch groups=cin: output channel c*dm+m uses kernel[:,:,c,m]
        wt = T[0].reshape(k[0], k[1], cin * dm).permute(2, 0, 1).unsqueeze(1)
        b = None
        if cfg.get("use_bias", True):
            expect_shape(name, "bias", T[1], (cin * dm,))
            b = T[1]
        y = F.conv2d(pad_for(x, cfg, k, d), wt, b, stride=s, dilation=d, groups=cin)
        return activate(cfg.get("activation"), to_nhwc(y))
    if cls == "SeparableConv2D":
        k, s, d = pair(cfg["kernel_size"]), pair(cfg["strides"]), pair(cfg["dilation_rate"])
        cin, dm, f = x.shape[3], cfg["depth_multiplier"], cfg["filters"]
        expect_shape(name, "depthwise_kernel", T[0], (k[0], k[1], cin, dm))
        expect_shape(name, "pointwise_kernel", T[1], (1, 1, cin * dm, f))
        wd = T[0].reshape(k[0], k[1], cin * dm).permute(2, 0, 1).unsqueeze(1)
        y = F.conv2d(pad_for(x, cfg, k, d), wd, None, stride=s, dilation=d, groups=cin)
        b = None
        if cfg.get("use_bias", True):
            expect_shape(name, "bias", T[2], (f,))
            b = T[2]
        y = F.conv2d(y, T[1].permute(3, 2, 0, 1), b)
        return activate(cfg.get("activation"), to_nhwc(y))
    if cls in ("Conv2DTranspose", "Deconvolution2D"):
        k, s = pair(cfg["kernel_size"]), pair(cfg["strides"])
        assert pair(cfg.get("dilation_rate", 1)) == [1, 1]
        assert cfg.get("output_padding") is None
        cin, f = x.shape[3], cfg["filters"]
        expect_shape(name, "kernel", T[0], (k[0], k[1], f, cin))
        wt = T[0].permute(3, 2, 0, 1)                       # (kh,kw,out,in)->(in,out,kh,kw)
        y = F.conv_transpose2d(to_nchw(x), wt, None, stride=s)  # full: (n-1)*s+k
        y = transpose_crop(y, x.shape[1:3], k, s, cfg["padding"])
        if cfg.get("use_bias", True):
            expect_shape(name, "bias", T[1], (f,))
            y = y + T[1].view(1, -1, 1, 1)
        return activate(cfg.get("activation"), to_nhwc(y))
    if cls in ("MaxPooling2D", "AveragePooling2D", "MaxPool2D", "AvgPool2D"):
        k = pair(cfg["pool_size"])
        s = pair(cfg["strides"] if cfg.get("strides") is not None else cfg["pool_size"])
        xc = to_nchw(x)
        pads = (0, 0, 0, 0)
        if cfg["padding"] == "same":
            t, b = tf_same_pads(xc.shape[2], k[0], s[0])
            l, r = tf_same_pads(xc.shape[3], k[1], s[1])
            pads = (l, r, t, b)
        if cls.startswith("Max"):
            y = F.max_pool2d(F.pad(xc, pads, value=-math.inf), k, s)
        else:   # TF: average over the valid (unpadded) cells only
            tot = F.avg_pool2d(F.pad(xc, pads), k, s, divisor_override=1)
            cnt = F.avg_pool2d(F.pad(torch.ones_like(xc), pads), k, s, divisor_override=1)
            y = tot / cnt
        return to_nhwc(y)
    if cls == "GlobalAveragePooling2D":
        return x.mean(dim=(1, 2))
    if cls == "GlobalMaxPooling2D":
        return x.amax(dim=(1, 2))
    if cls == "ZeroPadding2D":
        p = cfg["padding"]
        if isinstance(p, int):
            p = [[p, p], [p, p]]
        elif isinstance(p[0], int):
            p = [[p[0], p[0]], [p[1], p[1]]]
        (t, b), (l, r) = p
        return to_nhwc(F.pad(to_nchw(x), (l, r, t, b)))
    if cls == "BatchNormalization":
        ax = cfg.get("axis", -1)
        ax = ax[0] if isinstance(ax, list) else ax
        assert ax in (-1, x.dim() - 1), "BN only over the last (channel) axis"
        c = x.shape[-1]
        i = 0
        gamma = beta = None
        if cfg.get("scale", True):
            gamma = T[i]; i += 1
        if cfg.get("center", True):
            beta = T[i]; i += 1
        mean, var = T[i], T[i + 1]
        assert len(T) == i + 2, "BN weight count"
        for t in T:
            expect_shape(name, "bn param", t, (c,))
        y = (x - mean) / torch.sqrt(var + cfg.get("epsilon", 1e-3))
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return y
    if cls == "Dense":
        assert x.dim() == 2, "Dense here only on (N, F) inputs"
        expect_shape(name, "kernel", T[0], (x.shape[1], cfg["units"]))
        y = x @ T[0]
        if cfg.get("use_bias", True):
            expect_shape(name, "bias", T[1], (cfg["units"],))
            y = y + T[1]
        return activate(cfg.get("activation"), y)
    if cls == "Flatten":
        return x.reshape(x.shape[0], -1)                    # NHWC order == Keras order
    if cls == "Reshape":
        return x.reshape(x.shape[0], *cfg["target_shape"])
    if cls == "Activation":
        return activate(cfg["activation"], x)
    if cls == "ReLU":
        mv, ns, th = cfg.get("max_value"), cfg.get("negative_slope", 0.0), cfg.get("threshold", 0.0)
        pos = x if mv is None else torch.clamp(x, max=mv)
        return torch.where(x > th, pos, ns * (x - th))  # x<=threshold: slope*(x-threshold)
    if cls == "LeakyReLU":
        a = cfg.get("alpha", 0.3)
        return torch.where(x > 0, x, a * x)
    if cls == "Softmax":
        return torch.softmax(x, dim=cfg.get("axis", -1))
    if cls == "Add":
        y = ins[0]
        for t in ins[1:]:
            y = y + t
        return y
    if cls == "Concatenate":
        return torch.cat(ins, dim=cfg.get("axis", -1))
    raise ValueError("unsupported layer class %r" % cls)


def transpose_crop(y, in_hw, k, s, padding):
    """Keras/TF Conv2DTranspose output from the full scatter result y (NCHW,
    size (n-1)*s+k per dim). TF computes it as the gradient of a conv2d whose
    input has the output size: 'valid' out = n*s + max(k-s, 0); 'same' out = n*s
    with pad_before = max(k-s, 0)//2 cut off the top/left."""
    out, before = [], []
    for n, kk, ss in zip(in_hw, k, s):
        if padding == "valid":
            o, pb = n * ss + max(kk - ss, 0), 0
        else:
            o = n * ss
            pb = max((n - 1) * ss + kk - o, 0) // 2
        out.append(o)
        before.append(pb)
    full = torch.zeros(y.shape[0], y.shape[1], max(y.shape[2], before[0] + out[0]),
                       max(y.shape[3], before[1] + out[1]), dtype=y.dtype)
    full[:, :, :y.shape[2], :y.shape[3]] = y                # extra cells (k<s) are zero
    return full[:, :, before[0]:before[0] + out[0], before[1]:before[1] + out[1]].contiguous()


def model_layers(model):
    """(class_name, config, inbound names or None) in config order."""
    cfg = model["config"]
    layers = cfg if isinstance(cfg, list) else cfg["layers"]   # Keras <=2.2.2 Sequential: a list
    out = []
    for L in layers:
        inb = None
        if model["class_name"] in ("Model", "Functional"):
            nodes = L["inbound_nodes"]
            assert len(nodes) <= 1, "shared layers not used here"
            inb = [n[0] for n in nodes[0]] if nodes else []
        out.append((L["class_name"], L["config"], L.get("name", L["config"].get("name")), inb))
    return out


def input_shape(model):
    for cls, cfg, _, _ in model_layers(model):
        if "batch_input_shape" in cfg:
            return cfg["batch_input_shape"][1:]
    raise ValueError("no batch_input_shape")


def keras_forward(model, weights, x, dtype=torch.float64):
    """Returns (output tensor, [(layer name, class, output shape)])."""
    layers = model_layers(model)
    xt = torch.tensor(x, dtype=dtype)
    shapes = []
    if model["class_name"] == "Sequential":
        for cls, cfg, name, _ in layers:
            xt = run_layer(cls, cfg, weights.get(name, []), [xt], dtype)
            shapes.append((name, cls, list(xt.shape[1:])))
        return xt, shapes
    vals = {}
    inputs = [l[0] for l in model["config"]["input_layers"]]
    assert len(inputs) == 1
    pending = list(layers)
    while pending:                                          # topological evaluation
        rest = []
        for cls, cfg, name, inb in pending:
            if cls == "InputLayer":
                vals[name] = xt
            elif all(n in vals for n in inb):
                vals[name] = run_layer(cls, cfg, weights.get(name, []),
                                       [vals[n] for n in inb], dtype)
            else:
                rest.append((cls, cfg, name, inb))
                continue
        assert len(rest) < len(pending), "graph cycle / missing input"
        pending = rest
    for cls, cfg, name, _ in layers:
        shapes.append((name, cls, list(vals[name].shape[1:])))
    outs = [l[0] for l in model["config"]["output_layers"]]
    assert len(outs) == 1
    return vals[outs[0]], shapes


# --------------------------------------------------------------------------
# Brute-force numpy references, to cross-check the torch paths above
# --------------------------------------------------------------------------
def np_conv2d(x, K, s, d, padding, groups_dm=None):
    """x NHWC, K (kh,kw,cin,cout) or depthwise (kh,kw,cin,dm) when groups_dm."""
    n, h, w, c = x.shape
    kh, kw = K.shape[:2]
    if padding == "same":
        t, b = tf_same_pads(h, kh, s[0], d[0])
        l, r = tf_same_pads(w, kw, s[1], d[1])
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
        h, w = x.shape[1:3]
    oh = (h - (kh - 1) * d[0] - 1) // s[0] + 1
    ow = (w - (kw - 1) * d[1] - 1) // s[1] + 1
    cout = K.shape[2] * K.shape[3] if groups_dm else K.shape[3]
    y = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for bb in range(kw):
                    v = x[:, i * s[0] + a * d[0], j * s[1] + bb * d[1], :]   # (n, cin)
                    if groups_dm:
                        y[:, i, j, :] += (v[:, :, None] * K[a, bb][None]).reshape(n, -1)
                    else:
                        y[:, i, j, :] += v @ K[a, bb]
    return y


def np_conv_transpose(x, K, s, padding):
    """Scatter form of TF conv2d_transpose. K (kh,kw,out,in)."""
    n, h, w, c = x.shape
    kh, kw, f, _ = K.shape
    out, before = [], []
    for nn, kk, ss in zip((h, w), (kh, kw), s):
        o = nn * ss + max(kk - ss, 0) if padding == "valid" else nn * ss
        out.append(o)
        before.append(0 if padding == "valid" else max((nn - 1) * ss + kk - o, 0) // 2)
    y = np.zeros((n, out[0], out[1], f))
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    oi, oj = i * s[0] + a - before[0], j * s[1] + b - before[1]
                    if 0 <= oi < out[0] and 0 <= oj < out[1]:
                        y[:, oi, oj, :] += x[:, i, j, :] @ K[a, b].T
    return y


def np_pool(x, k, s, padding, kind):
    n, h, w, c = x.shape
    if padding == "same":
        oh, ow = -(-h // s[0]), -(-w // s[1])
        t, _ = tf_same_pads(h, k[0], s[0])
        l, _ = tf_same_pads(w, k[1], s[1])
    else:
        oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
        t = l = 0
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s[0] - t, j * s[1] - l
            win = x[:, max(r0, 0):min(r0 + k[0], h), max(c0, 0):min(c0 + k[1], w), :]
            y[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return y


def self_check():
    rng = np.random.default_rng(12345)
    worst = 0.0

    def cmp(a, b):
        nonlocal worst
        assert a.shape == b.shape, (a.shape, b.shape)
        worst = max(worst, float(np.max(np.abs(a - b))))
        assert np.allclose(a, b, rtol=1e-10, atol=1e-10)

    for (h, w) in [(7, 8), (9, 10), (5, 5), (6, 11)]:
        x = rng.standard_normal((2, h, w, 3))
        for k in [(1, 1), (2, 3), (3, 3), (4, 4), (5, 2)]:
            for s in [(1, 1), (2, 2), (3, 2)]:
                for pad in ("valid", "same"):
                    if pad == "valid" and (h < k[0] or w < k[1]):
                        continue
                    K = rng.standard_normal((k[0], k[1], 3, 4))
                    cfg = {"name": "t", "filters": 4, "kernel_size": list(k), "strides": list(s),
                           "padding": pad, "dilation_rate": [1, 1], "use_bias": False,
                           "activation": "linear"}
                    cmp(run_layer("Conv2D", cfg, [K], [torch.tensor(x)], torch.float64).numpy(),
                        np_conv2d(x, K, s, (1, 1), pad))
                    Kd = rng.standard_normal((k[0], k[1], 3, 2))
                    cfgd = dict(cfg, depth_multiplier=2)
                    cmp(run_layer("DepthwiseConv2D", cfgd, [Kd], [torch.tensor(x)], torch.float64).numpy(),
                        np_conv2d(x, Kd, s, (1, 1), pad, groups_dm=True))
                    Kt = rng.standard_normal((k[0], k[1], 4, 3))
                    cmp(run_layer("Conv2DTranspose", dict(cfg, output_padding=None), [Kt],
                                  [torch.tensor(x)], torch.float64).numpy(),
                        np_conv_transpose(x, Kt, s, pad))
                    for cls, kind in (("MaxPooling2D", "max"), ("AveragePooling2D", "avg")):
                        if k[0] > h or k[1] > w:
                            continue
                        pc = {"pool_size": list(k), "strides": list(s), "padding": pad}
                        cmp(run_layer(cls, pc, [], [torch.tensor(x)], torch.float64).numpy(),
                            np_pool(x, k, s, pad, kind))
        for d in [(2, 2), (3, 1)]:
            K = rng.standard_normal((3, 3, 3, 2))
            for pad in ("valid", "same"):
                cfg = {"name": "t", "filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
                       "padding": pad, "dilation_rate": list(d), "use_bias": False,
                       "activation": "linear"}
                if pad == "valid" and (h < 2 * d[0] + 1 or w < 2 * d[1] + 1):
                    continue
                cmp(run_layer("Conv2D", cfg, [K], [torch.tensor(x)], torch.float64).numpy(),
                    np_conv2d(x, K, (1, 1), d, pad))
    # documented output sizes
    assert tf_same_pads(9, 4, 2) == (1, 2) and tf_same_pads(10, 3, 2) == (0, 1)
    assert tf_same_pads(7, 2, 2) == (0, 1) and tf_same_pads(7, 3, 2) == (1, 1)
    return worst


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------
CASES = {}


def case(fn):
    """Register a case; the function is named case_<folder name>."""
    CASES[fn.__name__[len("case_"):]] = fn
    return fn


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def normal_input(rng, shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def pixels(rng, shape, maxval=1.0):
    """Image-like input, exact in float32 and short in JSON: k/256 for k in
    0..255, or the raw integer pixel k when maxval == 255."""
    k = rng.integers(0, 256, size=shape)
    return (k * (1.0 if maxval == 255 else 1.0 / 256)).astype(np.float32)


@case
def case_conv2d_valid_relu(r):
    m = Seq("sequential", [8, 8, 3])
    m.add(conv2d(r, "conv2d", 3, 4, 3, padding="valid", activation="relu"))
    return m.build() + (normal_input(r, (2, 8, 8, 3)),)


@case
def case_conv2d_same_stride2(r):
    # H: n=9,k=4,s=2 -> out 5, pad (1,2); W: n=10,k=3,s=2 -> out 5, pad (0,1)
    m = Seq("sequential", [9, 10, 3])
    m.add(conv2d(r, "conv2d", 3, 4, [4, 3], strides=2, padding="same", activation="tanh"))
    return m.build() + (normal_input(r, (2, 9, 10, 3)),)


@case
def case_conv2d_dilation2(r):
    m = Seq("sequential", [10, 10, 2])
    m.add(conv2d(r, "conv2d", 2, 3, 3, padding="same", dilation_rate=2, activation="relu"))
    m.add(conv2d(r, "conv2d_1", 3, 2, 3, padding="valid", dilation_rate=2))
    return m.build() + (normal_input(r, (2, 10, 10, 2)),)


@case
def case_conv2d_nobias_linear(r):
    m = Seq("sequential", [6, 7, 2])
    m.add(conv2d(r, "conv2d", 2, 3, [2, 3], strides=[2, 1], padding="valid",
                 activation="linear", use_bias=False))
    return m.build() + (normal_input(r, (2, 6, 7, 2)),)


@case
def case_depthwise_conv2d(r):
    m = Seq("sequential", [8, 8, 3])
    m.add(depthwise_conv2d(r, "depthwise_conv2d", 3, 3, depth_multiplier=2, padding="same"))
    return m.build() + (normal_input(r, (2, 8, 8, 3)),)


@case
def case_depthwise_conv2d_s2_valid(r):
    m = Seq("sequential", [9, 9, 4])
    m.add(depthwise_conv2d(r, "depthwise_conv2d", 4, [3, 2], depth_multiplier=1,
                           strides=2, padding="valid", activation="relu6"))
    return m.build() + (normal_input(r, (2, 9, 9, 4), scale=3.0),)


@case
def case_separable_conv2d(r):
    m = Seq("sequential", [8, 8, 3])
    m.add(separable_conv2d(r, "separable_conv2d", 3, 4, 3, depth_multiplier=2,
                           padding="same", activation="relu"))
    return m.build() + (normal_input(r, (2, 8, 8, 3)),)


@case
def case_conv2d_transpose_valid(r):
    m = Seq("sequential", [5, 5, 3])
    m.add(conv2d_transpose(r, "conv2d_transpose", 3, 2, 3, strides=2, padding="valid"))
    return m.build() + (normal_input(r, (2, 5, 5, 3)),)


@case
def case_conv2d_transpose_same_s2(r):
    # k=3,s=2: full 2n+1 cropped to 2n, nothing cut at top/left (pad_before 0)
    # k=4,s=2: full 2n+2 cropped to 2n, one row/col cut at top/left
    m = Seq("sequential", [4, 5, 3])
    m.add(conv2d_transpose(r, "conv2d_transpose", 3, 3, 3, strides=2, padding="same",
                           activation="relu"))
    m.add(conv2d_transpose(r, "conv2d_transpose_1", 3, 2, 4, strides=2, padding="same"))
    return m.build() + (normal_input(r, (2, 4, 5, 3)),)


@case
def case_maxpool_valid(r):
    m = Seq("sequential", [11, 11, 3])
    m.add(pool2d("MaxPooling2D", "max_pooling2d", 3, strides=2, padding="valid"))
    m.add(pool2d("MaxPooling2D", "max_pooling2d_1", 2))
    return m.build() + (normal_input(r, (2, 11, 11, 3)),)


@case
def case_maxpool_same_odd(r):
    # pool (3,2) stride 2 on 7x7: rows pad (1,1), cols pad (0,1); padded cells are -inf
    m = Seq("sequential", [7, 7, 2])
    m.add(pool2d("MaxPooling2D", "max_pooling2d", [3, 2], strides=2, padding="same"))
    return m.build() + (normal_input(r, (2, 7, 7, 2), shift=-2.0),)


@case
def case_avgpool_same_odd(r):
    m = Seq("sequential", [7, 7, 2])
    m.add(pool2d("AveragePooling2D", "average_pooling2d", [3, 2], strides=2, padding="same"))
    return m.build() + (normal_input(r, (2, 7, 7, 2), shift=1.0),)


@case
def case_avgpool_valid(r):
    m = Seq("sequential", [8, 9, 2])
    m.add(pool2d("AveragePooling2D", "average_pooling2d", 2))
    return m.build() + (normal_input(r, (2, 8, 9, 2)),)


@case
def case_global_avg_pool(r):
    m = Seq("sequential", [5, 6, 3])
    m.add(global_pool("GlobalAveragePooling2D", "global_average_pooling2d"))
    return m.build() + (normal_input(r, (2, 5, 6, 3)),)


@case
def case_global_max_pool(r):
    m = Seq("sequential", [5, 6, 3])
    m.add(global_pool("GlobalMaxPooling2D", "global_max_pooling2d"))
    return m.build() + (normal_input(r, (2, 5, 6, 3), shift=-1.0),)


@case
def case_zero_padding(r):
    m = Seq("sequential", [4, 5, 2])
    m.add(zero_padding("zero_padding2d", [[1, 2], [0, 1]]))
    m.add(zero_padding("zero_padding2d_1", [[1, 1], [1, 1]]))
    return m.build() + (normal_input(r, (2, 4, 5, 2)),)


@case
def case_batchnorm(r):
    # standalone-Keras style axis -1, non-default epsilon
    m = Seq("sequential", [4, 4, 3])
    m.add(batchnorm(r, "batch_normalization", 3, epsilon=0.01, axis=-1))
    return m.build() + (normal_input(r, (2, 4, 4, 3)),)


@case
def case_batchnorm_no_center(r):
    # center=False: weight_names are gamma, moving_mean, moving_variance (no beta);
    # tf.keras 2.x writes the built axis as [3]
    m = Seq("sequential", [4, 4, 3])
    m.add(batchnorm(r, "batch_normalization", 3, axis=[3], center=False))
    return m.build() + (normal_input(r, (2, 4, 4, 3)),)


ACTIVATIONS = ["linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax",
               "elu", "selu", "softplus", "softsign", "swish", "gelu", "exponential"]


def _dense_act(act):
    def fn(r):
        m = Seq("sequential", [2, 2, 2])
        m.add(flatten("flatten"))
        m.add(dense(r, "dense", 8, 6, activation=act))
        scale = 5.0 if act == "relu6" else 2.5   # relu6: make some outputs exceed 6
        return m.build() + (normal_input(r, (2, 2, 2, 2), scale=scale),)
    fn.__name__ = "case_dense_act_" + act
    return fn


for _a in ACTIVATIONS:
    case(_dense_act(_a))


@case
def case_activation_layer(r):
    m = Seq("sequential", [3, 3, 2])
    m.add(activation("activation", "elu"))
    m.add(activation("activation_1", "swish"))
    return m.build() + (normal_input(r, (2, 3, 3, 2), scale=2.0),)


@case
def case_relu_layer_maxvalue_slope(r):
    # f(x) = min(x, 6) for x > 0.5, 0.125*(x-0.5) otherwise
    m = Seq("sequential", [4, 4, 3])
    m.add(relu_layer("re_lu", max_value=6.0, negative_slope=0.125, threshold=0.5))
    return m.build() + (normal_input(r, (2, 4, 4, 3), scale=4.0),)


@case
def case_relu_layer_relu6(r):
    m = Seq("sequential", [4, 4, 3])
    m.add(relu_layer("re_lu", max_value=6.0))
    return m.build() + (normal_input(r, (2, 4, 4, 3), scale=4.0),)


@case
def case_leaky_relu(r):
    # alpha default 0.3 as Keras writes it (float32 value via .item())
    m = Seq("sequential", [4, 4, 3])
    m.add(simple("LeakyReLU", "leaky_re_lu", alpha=float(np.float32(0.3))))
    return m.build() + (normal_input(r, (2, 4, 4, 3), scale=2.0),)


@case
def case_softmax_layer(r):
    m = Seq("sequential", [3, 3, 5])
    m.add(simple("Softmax", "softmax", axis=-1))
    return m.build() + (normal_input(r, (2, 3, 3, 5), scale=2.0),)


@case
def case_reshape_flatten(r):
    # Reshape reinterprets the channels-last buffer; Flatten flattens in (h, w, c) order
    m = Seq("sequential", [4, 4, 3])
    m.add(conv2d(r, "conv2d", 3, 4, 3, padding="same"))
    m.add(simple("Reshape", "reshape", target_shape=[8, 2, 4]))
    m.add(conv2d(r, "conv2d_1", 4, 2, 2, padding="valid", activation="relu"))
    m.add(flatten("flatten"))
    m.add(dense(r, "dense", 7 * 1 * 2, 3))
    return m.build() + (normal_input(r, (2, 4, 4, 3)),)


@case
def case_add_functional(r):
    g = Func("model")
    x = g.input("input_1", [6, 6, 3])
    h = g(conv2d(r, "conv2d", 3, 3, 3, padding="same", activation="relu"), x)
    h = g(conv2d(r, "conv2d_1", 3, 3, 3, padding="same"), h)
    a = g(simple("Add", "add"), x, h)
    o = g(activation("activation", "relu"), a)
    return g.build(o) + (normal_input(r, (2, 6, 6, 3)),)


@case
def case_concat_functional(r):
    g = Func("model")
    x = g.input("input_1", [6, 6, 3])
    a = g(conv2d(r, "conv2d", 3, 2, 1), x)
    b = g(conv2d(r, "conv2d_1", 3, 3, 3, padding="same", activation="relu"), x)
    c = g(simple("Concatenate", "concatenate", axis=-1), a, b, x)
    return g.build(c) + (normal_input(r, (2, 6, 6, 3)),)


@case
def case_mnist_like(r):
    # Keras mnist_cnn example shape; tf.keras 2.x Sequential JSON (leading InputLayer)
    m = Seq("sequential", [28, 28, 1], tf_input_layer=True)
    m.add(conv2d(r, "conv2d", 1, 32, 3, activation="relu", scale="he"))
    m.add(pool2d("MaxPooling2D", "max_pooling2d", 2))
    m.add(conv2d(r, "conv2d_1", 32, 64, 3, activation="relu", scale="he"))
    m.add(pool2d("MaxPooling2D", "max_pooling2d_1", 2))
    m.add(flatten("flatten"))
    m.add(dropout("dropout", 0.5))
    m.add(dense(r, "dense", 5 * 5 * 64, 10, activation="softmax", scale="he"))
    return m.build() + (pixels(r, (2, 28, 28, 1)),)


@case
def case_resnet_small(r):
    g = Func("model")
    x = g.input("input_1", [8, 8, 3])
    h = g(conv2d(r, "conv2d", 3, 8, 3, padding="same", use_bias=False, scale="he"), x)
    h = g(batchnorm(r, "batch_normalization", 8, axis=[3]), h)
    h = g(relu_layer("re_lu"), h)
    # identity block
    y = g(conv2d(r, "conv2d_1", 8, 8, 3, padding="same", use_bias=False, scale="he"), h)
    y = g(batchnorm(r, "batch_normalization_1", 8, axis=[3]), y)
    y = g(relu_layer("re_lu_1"), y)
    y = g(conv2d(r, "conv2d_2", 8, 8, 3, padding="same", use_bias=False, scale="he"), y)
    y = g(batchnorm(r, "batch_normalization_2", 8, axis=[3]), y)
    h = g(simple("Add", "add"), h, y)
    h = g(relu_layer("re_lu_2"), h)
    # downsampling block with projection shortcut (8 -> 4, stride 2 same: pads (0,1))
    y = g(conv2d(r, "conv2d_3", 8, 16, 3, strides=2, padding="same", use_bias=False, scale="he"), h)
    y = g(batchnorm(r, "batch_normalization_3", 16, axis=[3]), y)
    y = g(relu_layer("re_lu_3", max_value=6.0), y)
    y = g(conv2d(r, "conv2d_4", 16, 16, 3, padding="same", use_bias=False, scale="he"), y)
    y = g(batchnorm(r, "batch_normalization_4", 16, axis=[3]), y)
    s = g(conv2d(r, "conv2d_5", 8, 16, 1, strides=2, padding="valid", use_bias=False, scale="he"), h)
    s = g(batchnorm(r, "batch_normalization_5", 16, axis=[3]), s)
    h = g(simple("Add", "add_1"), s, y)
    h = g(relu_layer("re_lu_4"), h)
    h = g(dropout("spatial_dropout2d", 0.2, cls="SpatialDropout2D"), h)
    h = g(global_pool("GlobalAveragePooling2D", "global_average_pooling2d"), h)
    o = g(dense(r, "dense", 16, 4, activation="softmax", scale="he"), h)
    return g.build(o) + (normal_input(r, (2, 8, 8, 3)),)


# ---- real fixtures (weights read from the fixture file, never copied) ------
def read_legacy_weights(path):
    """Keras 2 save_weights layout: root@layer_names, <layer>@weight_names,
    datasets at <layer>/<weight name>."""
    def s(v):
        return v.decode() if isinstance(v, bytes) else str(v)
    out = {}
    with h5py.File(path, "r") as f:
        for ln in f.attrs["layer_names"]:
            ln = s(ln)
            g = f[ln]
            out[ln] = [(s(wn), np.array(g[s(wn)]), None) for wn in g.attrs["weight_names"]]
    return out


LENET_JSON = None


def lenet_model():
    """Architecture of tfk_2.15.0_weights_lenet.h5, which ships without JSON.
    Source: HiddenMachine3/digit_recognizer lenet_impl.ipynb @5f067a6:
      Conv2D(6,5x5,same,sigmoid,input 28x28x1) AvgPool2D(2,2) Conv2D(16,5x5,valid,
      sigmoid) AvgPool2D(2,2) Flatten Dense(120,sigmoid) Dense(84,sigmoid) Dense(10,softmax)
    Consistent with the weights: dense kernel (400,120) = 5*5*16."""
    r = np.random.default_rng(0)  # only for the (discarded) builder weights
    m = Seq("sequential", [28, 28, 1])
    m.add(conv2d(r, "conv2d", 1, 6, 5, padding="same", activation="sigmoid"))
    m.add(pool2d("AveragePooling2D", "average_pooling2d", 2, strides=2))
    m.add(conv2d(r, "conv2d_1", 6, 16, 5, padding="valid", activation="sigmoid"))
    m.add(pool2d("AveragePooling2D", "average_pooling2d_1", 2, strides=2))
    m.add(flatten("flatten"))
    m.add(dense(r, "dense", 400, 120, activation="sigmoid"))
    m.add(dense(r, "dense_1", 120, 84, activation="sigmoid"))
    m.add(dense(r, "dense_2", 84, 10, activation="softmax"))
    model, _ = m.build()
    model["keras_version"] = "2.15.0"
    return model


FIXTURES = {
    # case: (weights file, model json file or None -> write model.json, input pixel range)
    # The 2.1.2 mnist model was trained on raw 0..255 pixels (on 0..1 inputs its
    # softmax is ~uniform), so it gets integer pixels 0..255; the others k/256.
    "fixture_k2_mnist_cnn": ("keras/k2_2.1.2_weights_mnist_cnn.h5",
                             "keras/k2_2.1.2_mnist_cnn.model.json", 255),
    "fixture_tfk_lenet": ("keras/tfk_2.15.0_weights_lenet.h5", None, 1.0),
    "fixture_k2_cnn_bn_dropout": ("keras/k2_2.0.6_weights_cnn_bn_dropout.h5",
                                  "keras/k2_2.0.6_cnn_bn_dropout.model.json", 1.0),
}


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def write_weights_h5(path, model, weights):
    """Legacy Keras 2 save_weights layout, as Keras 2.2.4 writes it."""
    names = [name for cls, cfg, name, _ in model_layers(model)
             if not (cls == "InputLayer" and model["class_name"] == "Sequential")]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = np.bytes_(b"tensorflow")
        f.attrs["keras_version"] = np.bytes_(KERAS_VERSION.encode())
        for ln in names:
            g = f.create_group(ln)
            ws = weights.get(ln, [])
            if not ws:
                g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
                continue
            wnames = ["%s/%s:0" % (ln, wn) for wn, _, _ in ws]
            g.attrs["weight_names"] = np.array([n.encode() for n in wnames])
            for wn, (_, arr, _) in zip(wnames, ws):
                g.create_dataset(wn, data=arr.astype(np.float32))   # contiguous, no filters


def dump(path, obj, compact=True):
    with open(path, "w") as f:
        if compact:
            f.write(json.dumps(obj, separators=(",", ":")))
        else:
            f.write(json.dumps(obj))
        f.write("\n")


def tensor_json(t):
    a = np.asarray(t, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def param_counts(weights):
    tot = tr = 0
    for ws in weights.values():
        for wn, arr, trainable in ws:
            n = int(np.prod(arr.shape))
            tot += n
            if trainable is None:   # fixture: infer from the name
                trainable = not ("moving_mean" in wn or "moving_variance" in wn)
            tr += n if trainable else 0
    return tot, tr, tot - tr


def emit(name, model, weights, x, outdir, fixture=None):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    wlists = {k: [a for _, a, _ in v] for k, v in weights.items()}
    y64, shapes = keras_forward(model, wlists, x, torch.float64)
    y32, _ = keras_forward(model, wlists, x, torch.float32)
    y64 = y64.numpy()
    dev = float(np.max(np.abs(y64 - y32.numpy().astype(np.float64))))
    assert np.all(np.isfinite(y64))
    tot, tr, ntr = param_counts(weights)
    if fixture:
        wfile, jfile = fixture
        with open(os.path.join(d, "fixture.txt"), "w") as f:
            f.write(wfile + "\n")
        if jfile:
            with open(os.path.join(d, "fixture_model.txt"), "w") as f:
                f.write(jfile + "\n")
        else:
            dump(os.path.join(d, "model.json"), model, compact=False)
    else:
        dump(os.path.join(d, "model.json"), model, compact=False)
        write_weights_h5(os.path.join(d, "weights.h5"), model, weights)
        # read the file back the way a consumer would and recompute
        back = read_legacy_weights(os.path.join(d, "weights.h5"))
        yb, _ = keras_forward(model, {k: [a for _, a, _ in v] for k, v in back.items()}, x)
        assert np.array_equal(yb.numpy(), y64), name
    dump(os.path.join(d, "input.json"), tensor_json(x))
    dump(os.path.join(d, "expected.json"), tensor_json(y64))
    summary = {"params": tot, "trainable_params": tr, "non_trainable_params": ntr,
               "input_shape": [None] + list(x.shape[1:]),
               "output_shape": [None] + list(y64.shape[1:]),
               "f32_torch_max_abs_dev": float("%.3g" % dev),
               "layers": [{"name": n, "class": c, "output_shape": [None] + s}
                          for n, c, s in shapes]}
    dump(os.path.join(d, "summary.json"), summary, compact=False)
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.environ.get("STRATA_FIXTURES", "/work/shared/fixtures"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()

    worst = self_check()
    print("self-check ok (torch vs numpy brute force, max |diff| %.2e)" % worst)
    rows = []
    for name, fn in CASES.items():
        if args.only and name not in args.only:
            continue
        model, weights, x = fn(rng_for(name))
        s = emit(name, model, weights, x, args.out)
        rows.append((name, s))
    for name, (wfile, jfile, maxval) in FIXTURES.items():
        if args.only and name not in args.only:
            continue
        wpath = os.path.join(args.fixtures, wfile)
        if not os.path.exists(wpath):
            print("skip %s: %s missing" % (name, wpath), file=sys.stderr)
            continue
        weights = read_legacy_weights(wpath)
        if jfile:
            with open(os.path.join(args.fixtures, jfile)) as f:
                model = json.load(f)
        else:
            model = lenet_model()
        shape = input_shape(model)
        x = pixels(rng_for(name), [2] + shape, maxval)
        s = emit(name, model, weights, x, args.out, fixture=(wfile, jfile))
        rows.append((name, s))
        if name == "fixture_k2_mnist_cnn":
            assert s["params"] == 59933, s["params"]
    table = ["| case | params | non-trainable | input (per sample) | output | f32 torch dev |",
             "|---|---:|---:|---|---|---:|"]
    for name, s in rows:
        table.append("| `%s` | %d | %d | %s | %s | %.1e |" % (
            name, s["params"], s["non_trainable_params"], s["input_shape"][1:],
            s["output_shape"][1:], s["f32_torch_max_abs_dev"]))
    readme = os.path.join(args.out, "README.md")
    if not args.only and os.path.exists(readme):
        with open(readme) as f:
            text = f.read()
        a, b = "<!-- cases:begin -->", "<!-- cases:end -->"
        if a in text and b in text:
            text = text[:text.index(a) + len(a)] + "\n" + "\n".join(table) + "\n" + text[text.index(b):]
            with open(readme, "w") as f:
                f.write(text)
    for name, s in rows:
        print("%-28s params %7d (non-trainable %4d)  in %-14s out %-14s f32dev %.1e"
              % (name, s["params"], s["non_trainable_params"], s["input_shape"][1:],
                 s["output_shape"][1:], s["f32_torch_max_abs_dev"]))


if __name__ == "__main__":
    main()
