"""Every Keras-written fixture in ../shared/fixtures/keras, through strata and
back into the real Keras of its generation: Keras 3 files by Keras 3, Keras 2
and tf.keras files by tf-keras. For each file the model is built from its
config (the companion .model.json, or the config inside a full-model file);
Keras reads the original file into it; the file is uploaded, served back
plain and through strata.keras.load_weights (?format= of the model's Keras),
and read by Keras again: every array of get_weights() must be bit-identical
to what Keras read from the original. Files with no Keras of their
generation installed (Keras 1) or no config to build a model from say so
loudly, per file.
"""
import os
import sys
import warnings

import numpy as np
import pytest

import keras as keras3
import strata
import tf_keras
from strata.keras import load_weights

# file -> (Keras that reads it, where its config comes from: a .model.json,
# "self" for a full-model file, or None: no config to build a model from)
CASES = {
    "k2_2.0.0_weights_conv2d_dropout.h5": ("tf_keras", "k2_2.0.0_conv2d_dropout.model.json"),
    "k2_2.0.6_weights_cnn_bn_dropout.h5": ("tf_keras", "k2_2.0.6_cnn_bn_dropout.model.json"),
    "k2_2.1.2_weights_mnist_cnn.h5": ("tf_keras", "k2_2.1.2_mnist_cnn.model.json"),
    "k2_2.1.3_full_cnn_bn.h5": ("tf_keras", "self"),
    "tfk_2.2.4-tf_full_depthwise_cnn.h5": ("tf_keras", "self"),
    "tfk_2.4.0_full_conv1d_adam.h5": ("tf_keras", "self"),
    "tfk_2.15.0_weights_lenet.h5": ("tf_keras", None),
    "k3_3.10.0_mnist_cnn.weights.h5": ("keras3", "k3_3.10.0_mnist_cnn.model.json"),
    "k3_3.10.0_legacy_full_mnist_cnn.h5": ("keras3", "self"),
    "k3_3.11.3_mnist_cnn.keras": ("keras3", "self"),
    "k3_3.x_cnn_bn_dropout_nested.weights.h5": ("keras3", None),
    "k1_1.0.4_weights_cifar10_cnn_th.h5": ("keras1", "k1_1.0.4_cifar10_cnn_th.model.json"),
    "k1_1.1.2_full_cnn_tf.h5": ("keras1", "self"),
    "k1_1.1.2_weights_cnn_tf.h5": ("keras1", None),
    "k1_1.2.2_full_dense_bn_conv2d_tf.h5": ("keras1", "self"),
}
KERAS = {"tf_keras": tf_keras, "keras3": keras3}


def loud_skip(msg):
    sys.stderr.write(f"SKIPPED (loudly): {msg}\n")
    pytest.skip(msg)


def config_of(k, folder, fname, source):
    if source == "self":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return k.models.load_model(os.path.join(folder, fname), compile=False).to_json()
    with open(os.path.join(folder, source)) as f:
        return f.read()


def equal(wa, wb):
    return len(wa) == len(wb) and all(a.shape == b.shape and np.array_equal(a, b)
                                      for a, b in zip(wa, wb))


def test_every_fixture_is_in_the_table(keras_fixtures):
    files = {f for f in os.listdir(keras_fixtures) if f.endswith((".h5", ".keras"))}
    assert files == set(CASES), "a fixture without a row, or a row without its fixture"


@pytest.mark.parametrize("fname", sorted(CASES))
def test_fixture_round_trip_in_real_keras(reg, keras_fixtures, fname, tmp_path):
    gen, source = CASES[fname]
    path = os.path.join(keras_fixtures, fname)
    if gen == "keras1":
        loud_skip(f"{fname}: written by Keras 1; no Keras 1 is installed to load it back "
                  "(tests/http/t_fixtures.sh checks what strata serves of it with h5py)")
    if source is None:
        loud_skip(f"{fname}: weights only, with no model config beside it to build the "
                  "Keras model it belongs to (tests/http/t_fixtures.sh checks it with h5py)")
    k = KERAS[gen]
    cfg = config_of(k, keras_fixtures, fname, source)

    def build():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return k.models.model_from_json(cfg)

    want_model = build()
    want_model.load_weights(path)            # what Keras itself reads from the original
    want = want_model.get_weights()

    name = "fx-" + fname.replace("_", "-").replace(".", "-")[:100]
    try:
        reg.create_model(name, architecture=cfg)
        arch = True
    except strata.InvalidArchitecture as e:
        # refused with a precise reason: the layer and why; the weights are
        # still stored and served (validation needs the architecture)
        assert e.status == 422 and "layer '" in e.message and "'" in e.message, e.message
        sys.stderr.write(f"{fname}: architecture refused: {e.message}\n")
        reg.create_model(name)
        arch = False
    v = reg.upload(name, path)
    if arch:
        assert v["validation"]["status"] == "passed"

    # Keras picks its reader by the file name: keep the original's suffix
    ext = next(x for x in (".weights.h5", ".keras", ".h5") if fname.endswith(x))
    served = reg.download(name, v["version"], str(tmp_path / ("served" + ext)))
    with open(served, "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read(), "a plain download is the uploaded bytes"
    fresh = build()
    fresh.load_weights(served)
    assert equal(want, fresh.get_weights())

    other = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # Keras 3: "optimizer … 0 variables" when converted
        load_weights(other, reg, name, ref=v["version"])
    assert equal(want, other.get_weights()), "through ?format= of the model's Keras"
