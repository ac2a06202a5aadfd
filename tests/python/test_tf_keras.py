"""The seed's examples with real tf-keras (the Keras 2 API, as tf.keras
users run it) against the real server: save_weights .h5 round trips bit for
bit, a tf-keras checkpoint fetched with ?format=keras3 into real Keras 3 and
back with ?format=keras2, StrataCheckpoint(period=5) and resume under
tf-keras' callback protocol, transfer with by_name, strata's predict against
TensorFlow's.
"""
import os
import warnings

import numpy as np
import pytest

from conftest import learnable_task

import tf_keras
import keras as keras3
from strata.keras import StrataCheckpoint, load_weights, resume

@pytest.fixture(scope="module")
def data():
    return learnable_task(seed=11)


def seed_cnn(head=10, head_name="dense"):
    """The seed's example 1 in Keras 2, literally."""
    m = tf_keras.Sequential([
        tf_keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1),
                               name="conv2d"),
        tf_keras.layers.MaxPooling2D(name="max_pooling2d"),
        tf_keras.layers.Flatten(name="flatten"),
        tf_keras.layers.Dense(head, activation="softmax", name=head_name),
    ])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def seed_cnn_keras3():
    return keras3.Sequential([
        keras3.Input((28, 28, 1)),
        keras3.layers.Conv2D(32, (3, 3), activation="relu", name="conv2d"),
        keras3.layers.MaxPooling2D(name="max_pooling2d"),
        keras3.layers.Flatten(name="flatten"),
        keras3.layers.Dense(10, activation="softmax", name="dense"),
    ])


def functional_cnn():
    inp = tf_keras.Input((28, 28, 1), name="image")
    a = tf_keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    b = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(a)
    s = tf_keras.layers.Add(name="skip")([a, b])
    s = tf_keras.layers.BatchNormalization(name="bn")(s)
    p = tf_keras.layers.GlobalAveragePooling2D(name="gap")(s)
    out = tf_keras.layers.Dense(10, activation="softmax", name="out")(p)
    m = tf_keras.Model(inp, out, name="fn")
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def weights_equal(wa, wb):
    return len(wa) == len(wb) and all(a.dtype == b.dtype and np.array_equal(a, b)
                                      for a, b in zip(wa, wb))


@pytest.mark.parametrize("build", [seed_cnn, functional_cnn], ids=["sequential", "functional"])
def test_example1_round_trip_bit_identical(reg, name, data, tmp_path, build):
    x, y, _, _ = data
    model = build()
    model.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model, epoch=0, run="r1")
    assert v["format"] == "keras2-weights"
    fresh = build()
    fresh.load_weights(reg.download(name, v["version"], str(tmp_path / "w.h5")))
    assert weights_equal(model.get_weights(), fresh.get_weights())
    other = build()
    load_weights(other, reg, name, ref=v["version"])
    assert weights_equal(model.get_weights(), other.get_weights())


def test_tf_keras_file_into_keras3_and_back(reg, name, data, tmp_path):
    x, y, _, _ = data
    model = seed_cnn()
    model.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model)
    # fetched for Keras 3 and loaded by Keras 3's own load_weights
    k3 = seed_cnn_keras3()
    k3.load_weights(reg.download(name, v["version"], str(tmp_path / "k3.weights.h5"),
                                 format="keras3"))
    assert weights_equal(model.get_weights(), k3.get_weights())
    np.testing.assert_allclose(k3.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0),
                               atol=1e-6)
    # Keras 3 saves it, strata takes it for the same (Keras 2) architecture,
    # and tf-keras loads it back as keras2
    k3.save_weights(str(tmp_path / "from3.weights.h5"))
    v3 = reg.upload(name, str(tmp_path / "from3.weights.h5"))
    assert v3["format"] == "keras3-weights"
    back = seed_cnn()
    back.load_weights(reg.download(name, v3["version"], str(tmp_path / "back.h5"),
                                   format="keras2"))
    assert weights_equal(model.get_weights(), back.get_weights())


def test_predict_matches_tensorflow(reg, name, data):
    x, y, _, _ = data
    model = seed_cnn()
    model.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model)
    ours = reg.predict(name, v["version"], x[:8])
    assert np.max(np.abs(ours - model.predict(x[:8], verbose=0))) <= 1e-5


def test_example2_period_and_resume(reg, name, data, tmp_path):
    x, y, xv, yv = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="p5", period=5, spool_dir=str(tmp_path / "spool"))
    hist = model.fit(x, y, validation_data=(xv, yv), epochs=20, batch_size=64, verbose=0,
                     callbacks=[cb])
    assert cb.flush(timeout=60) and cb.problems == []
    vs = reg.versions(name, run="p5", order_by="epoch", order="asc")
    assert [v["epoch"] for v in vs] == [4, 9, 14, 19]
    assert all(v["format"] == "keras2-weights" for v in vs)
    for v in vs:
        assert v["metrics"]["val_loss"] == pytest.approx(hist.history["val_loss"][v["epoch"]],
                                                         rel=1e-12)
    assert reg.history(name, run="p5")["runs"][0]["epochs"] == list(range(20))
    again = seed_cnn()
    assert resume(again, reg, name, "p5") == 20
    assert weights_equal(model.get_weights(), again.get_weights())


def test_example2_save_best_only(reg, name, data, tmp_path):
    x, y, xv, yv = data
    tf_keras.utils.set_random_seed(5)
    model = seed_cnn()
    reg.create_model(name, architecture=model, monitor=("val_loss", "min"))

    def spoil(epoch, logs):
        if epoch in (3, 6):
            k, b = model.get_layer("dense").get_weights()
            model.get_layer("dense").set_weights([-3 * k, b])
    ref = tf_keras.callbacks.ModelCheckpoint(str(tmp_path / "k-{epoch:02d}.h5"), monitor="val_loss",
                                             save_best_only=True, save_weights_only=True)
    cb = StrataCheckpoint(reg, name, run="best", save_best_only=True,
                          spool_dir=str(tmp_path / "spool"))
    model.fit(x, y, validation_data=(xv, yv), epochs=9, verbose=0,
              callbacks=[tf_keras.callbacks.LambdaCallback(on_epoch_begin=spoil), ref, cb])
    assert cb.flush(timeout=60)
    saved = sorted(int(f[2:4]) - 1 for f in os.listdir(tmp_path) if f.startswith("k-"))
    assert 1 <= len(saved) < 9
    assert [v["epoch"] for v in reg.versions(name, run="best", order_by="epoch")] == saved
    assert reg.version(name, "best")["epoch"] == saved[-1]


def test_example3_transfer_by_name(reg, name, data):
    x, y, _, _ = data
    pre = seed_cnn()
    pre.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=pre)
    reg.upload(name, pre, tags=["prod"])
    new = seed_cnn(head=5, head_name="new_head")
    head = [w.copy() for w in new.get_layer("new_head").get_weights()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_weights(new, reg, name, ref="prod", transfer=True) == ["conv2d"]
    assert weights_equal(new.get_layer("conv2d").get_weights(),
                         pre.get_layer("conv2d").get_weights())
    assert weights_equal(new.get_layer("new_head").get_weights(), head)
    assert np.isfinite(new.fit(x, y % 5, epochs=1, verbose=0).history["loss"][0])


def test_whole_model_checkpoints(reg, name, data, tmp_path):
    """save_weights_only=False: tf-keras' model.save(.h5) (keras2-model)."""
    x, y, _, _ = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="whole", save_weights_only=False,
                          spool_dir=str(tmp_path / "spool"))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert cb.flush(timeout=60) and cb.problems == []
    (v,) = reg.versions(name, run="whole")
    assert v["format"] == "keras2-model"
    back = seed_cnn()
    load_weights(back, reg, name, ref=v["version"])
    assert weights_equal(model.get_weights(), back.get_weights())
    full = tf_keras.models.load_model(reg.download(name, v["version"], str(tmp_path / "m.h5")))
    assert weights_equal(model.get_weights(), full.get_weights())
