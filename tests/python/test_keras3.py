"""The seed's three examples with real Keras 3 (TensorFlow backend) against
the real server: checkpoints uploaded and loaded back bit for bit,
StrataCheckpoint as ModelCheckpoint(period=5 / save_best_only) including a
server that goes away in the middle of fit(), resume, transfer learning
with ?for=, strata's predict against TensorFlow's, and Keras' own
RemoteMonitor posting history with no strata package involved.
"""
import os
import time
import warnings

import numpy as np
import pytest

from conftest import learnable_task

import keras
import strata
from strata.keras import StrataCheckpoint, StrataWarning, load_weights, resume

@pytest.fixture(scope="module")
def data():
    return learnable_task(seed=7)


def seed_cnn(head=10, head_name=None, lr=1e-3):
    """The seed's example 1, literally (input_shape on the first layer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras 3 prefers keras.Input to input_shape=
        m = keras.Sequential([
            keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1),
                                name="conv2d"),
            keras.layers.MaxPooling2D(name="max_pooling2d"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(head, activation="softmax", name=head_name or "dense"),
        ])
    m.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def functional_cnn():
    inp = keras.Input((28, 28, 1), name="image")
    a = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    b = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(a)
    s = keras.layers.Add(name="skip")([a, b])
    s = keras.layers.BatchNormalization(name="bn")(s)
    p = keras.layers.GlobalAveragePooling2D(name="gap")(s)
    out = keras.layers.Dense(10, activation="softmax", name="out")(p)
    m = keras.Model(inp, out, name="fn")
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def mnist_cnn():
    """Keras' examples/mnist_cnn.py architecture."""
    m = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu", name="conv2d"),
        keras.layers.Conv2D(64, (3, 3), activation="relu", name="conv2d_1"),
        keras.layers.MaxPooling2D((2, 2), name="max_pooling2d"),
        keras.layers.Dropout(0.25, name="dropout"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(128, activation="relu", name="dense"),
        keras.layers.Dropout(0.5, name="dropout_1"),
        keras.layers.Dense(10, activation="softmax", name="dense_1"),
    ])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.dtype == y.dtype and np.array_equal(x, y)
                                      for x, y in zip(wa, wb))


def spool(tmp_path):
    return str(tmp_path / "spool")


# ---- example 1: upload, download, load -------------------------------------------

@pytest.mark.parametrize("build", [seed_cnn, functional_cnn], ids=["sequential", "functional"])
def test_example1_round_trip_bit_identical(reg, name, data, tmp_path, build):
    x, y, _, _ = data
    model = build()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model, epoch=0, run="r1", metrics={"loss": 0.5})
    assert v["format"] == "keras3-weights" and v["validation"]["status"] == "passed"

    # the served file, read by Keras' own load_weights
    fresh = build()
    assert not same_weights(model, fresh)
    path = reg.download(name, v["version"], str(tmp_path / "w.weights.h5"))
    fresh.load_weights(path)
    assert same_weights(model, fresh)
    # and through strata.keras.load_weights
    other = build()
    loaded = load_weights(other, reg, name, ref=v["version"])
    assert same_weights(model, other)
    assert {lay.name for lay in model.layers if lay.weights} <= set(loaded)
    np.testing.assert_array_equal(model.predict(x[:4], verbose=0), other.predict(x[:4], verbose=0))


def test_example1_optimizer_state_survives(reg, name, data, tmp_path):
    """A Keras 3 .weights.h5 holds the optimizer's variables too; asked as
    keras3 (what load_weights asks), the served file must keep them."""
    x, y, _, _ = data
    model = seed_cnn()
    model.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model)
    a = reg.download(name, v["version"], str(tmp_path / "a.weights.h5"))
    b = reg.download(name, v["version"], str(tmp_path / "b.weights.h5"), format="keras3")
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()


# ---- strata's engine against TensorFlow -------------------------------------------

@pytest.mark.parametrize("build", [seed_cnn, mnist_cnn], ids=["seed_cnn", "mnist_cnn"])
def test_predict_matches_tensorflow(reg, name, data, build):
    x, y, _, _ = data
    model = build()
    model.fit(x, y, epochs=1, verbose=0)
    reg.create_model(name, architecture=model)
    v = reg.upload(name, model)
    batch = x[:8]
    ours = reg.predict(name, v["version"], batch)
    theirs = model.predict(batch, verbose=0)
    assert isinstance(ours, np.ndarray) and ours.shape == theirs.shape == (8, 10)
    assert np.max(np.abs(ours - theirs)) <= 1e-5
    as_list = reg.predict(name, v["version"], batch[:1].tolist())
    assert isinstance(as_list, list) and np.max(np.abs(np.array(as_list) - theirs[:1])) <= 1e-5


# ---- example 2: the callback -------------------------------------------------------

def test_example2_period_5_over_20_epochs(reg, name, data, tmp_path):
    """No model made beforehand: the callback's first upload creates it with
    the model's architecture and the monitor (val_loss, min)."""
    x, y, xv, yv = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="p5", period=5, spool_dir=spool(tmp_path))
    hist = model.fit(x, y, validation_data=(xv, yv), epochs=20, batch_size=64, verbose=0,
                     callbacks=[cb])
    assert cb.flush(timeout=60)
    assert cb.problems == []
    vs = reg.versions(name, run="p5", order_by="epoch", order="asc")
    # ModelCheckpoint(period=5) saves after epochs 5, 10, 15, 20 = indices 4, 9, 14, 19
    assert [v["epoch"] for v in vs] == [4, 9, 14, 19]
    for v in vs:
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert v["metrics"][k] == pytest.approx(hist.history[k][v["epoch"]], rel=1e-12)
    h = reg.history(name, run="p5")["runs"][0]
    assert h["epochs"] == list(range(20))
    assert h["metrics"]["loss"] == pytest.approx(hist.history["loss"], rel=1e-12)
    assert [c["epoch"] for c in h["checkpoints"]] == [4, 9, 14, 19]
    m = reg.model(name)
    assert m["architecture"] and m.get("monitor", {}).get("metric") == "val_loss"
    # the last checkpoint holds the final weights
    back = seed_cnn()
    load_weights(back, reg, name, ref=vs[-1]["version"])
    assert same_weights(model, back)


def test_example2_save_best_only_matches_model_checkpoint(reg, name, data, tmp_path):
    x, y, xv, yv = data
    keras.utils.set_random_seed(3)
    model = seed_cnn(lr=3e-3)
    reg.create_model(name, architecture=model, monitor=("val_loss", "min"))
    saved = []   # the epochs (1-based in Keras' file names) ModelCheckpoint writes
    ref = keras.callbacks.ModelCheckpoint(str(tmp_path / "k-{epoch:02d}.weights.h5"),
                                          monitor="val_loss", save_best_only=True,
                                          save_weights_only=True)
    cb = StrataCheckpoint(reg, name, run="best", monitor="val_loss", save_best_only=True,
                          spool_dir=spool(tmp_path))

    def spoil(epoch, logs):       # val_loss must go up now and then
        if epoch in (4, 7):
            k, b = model.get_layer("dense").get_weights()
            model.get_layer("dense").set_weights([-3 * k, b])
    spoiler = keras.callbacks.LambdaCallback(on_epoch_begin=spoil)
    hist = model.fit(x, y, validation_data=(xv, yv), epochs=12, batch_size=32, verbose=0,
                     callbacks=[spoiler, ref, cb])
    assert cb.flush(timeout=60)
    saved = sorted(int(f[2:4]) - 1 for f in os.listdir(tmp_path) if f.startswith("k-"))
    assert 1 <= len(saved) < 12, "the data must make val_loss go up and down"
    vs = reg.versions(name, run="best", order_by="epoch", order="asc")
    assert [v["epoch"] for v in vs] == saved
    best = reg.version(name, "best")
    assert best["epoch"] == saved[-1]
    assert best["metrics"]["val_loss"] == pytest.approx(min(hist.history["val_loss"]), rel=1e-12)
    # the `best` checkpoint is ModelCheckpoint's last file, byte for byte in weights
    mine, theirs = seed_cnn(), seed_cnn()
    load_weights(mine, reg, name, ref="best")
    theirs.load_weights(str(tmp_path / f"k-{saved[-1] + 1:02d}.weights.h5"))
    assert same_weights(mine, theirs)

    # keras#17012: a resumed run's save_best_only starts from the server's best,
    # not from +inf — a fresh, worse model saves nothing.
    worse = seed_cnn(lr=1e-7)
    cb2 = StrataCheckpoint(reg, name, run="best", monitor="val_loss", save_best_only=True,
                           spool_dir=spool(tmp_path))
    h2 = worse.fit(x, y, validation_data=(xv, yv), initial_epoch=12, epochs=14, verbose=0,
                   callbacks=[cb2])
    assert cb2.flush(timeout=60)
    assert min(h2.history["val_loss"]) > min(hist.history["val_loss"])
    assert cb2.best == pytest.approx(min(hist.history["val_loss"]), rel=1e-12)
    assert cb2.uploaded == []
    assert reg.version(name, "best")["version"] == best["version"]


def test_example2_server_down_mid_fit(server, reg, name, data, tmp_path):
    """The server stops after epoch 2: fit() finishes, warns, and once the
    server is back flush() sends every checkpoint exactly once."""
    x, y, xv, yv = data
    model = seed_cnn()
    reg.create_model(name, architecture=model)
    cb = StrataCheckpoint(reg, name, run="down", period=1, spool_dir=spool(tmp_path),
                          drain_timeout=5)
    killer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: server.stop() if epoch == 2 else None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.monotonic()
            hist = model.fit(x, y, validation_data=(xv, yv), epochs=8, verbose=0,
                             callbacks=[cb, killer])
            took = time.monotonic() - t0
        assert len(hist.history["loss"]) == 8
        ours = [str(w.message) for w in caught if issubclass(w.category, StrataWarning)]
        assert any("cannot send" in m for m in ours), ours
        assert any("not on" in m and "yet" in m for m in ours), ours
        assert cb.pending() > 0
        assert took < 60, "fit must not wait on an absent server"
    finally:
        server.start()
    assert cb.flush(timeout=120)
    vs = reg.versions(name, run="down", order_by="epoch", order="asc")
    assert [v["epoch"] for v in vs] == list(range(8)), "every checkpoint, each exactly once"
    assert reg.history(name, run="down")["runs"][0]["epochs"] == list(range(8))
    assert not [f for f in os.listdir(spool(tmp_path)) if not f.startswith(".")]


def test_example2_resume(reg, name, data, tmp_path):
    x, y, xv, yv = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="res", period=2, spool_dir=spool(tmp_path))
    model.fit(x, y, validation_data=(xv, yv), epochs=6, verbose=0, callbacks=[cb])
    assert cb.flush(timeout=60)

    again = seed_cnn()
    initial = resume(again, reg, name, "res")
    assert initial == 6                       # the last checkpoint was after the 6th epoch
    assert same_weights(model, again)
    cb2 = StrataCheckpoint(reg, name, run="res", period=2, spool_dir=spool(tmp_path))
    again.fit(x, y, validation_data=(xv, yv), initial_epoch=initial, epochs=10, verbose=0,
              callbacks=[cb2])
    assert cb2.flush(timeout=60)
    assert [v["epoch"] for v in reg.versions(name, run="res", order_by="epoch", order="asc")] \
        == [1, 3, 5, 7, 9]
    assert reg.history(name, run="res")["runs"][0]["epochs"] == list(range(10))
    assert resume(seed_cnn(), reg, name, "never-ran") == 0


def test_save_freq_batches(reg, name, data, tmp_path):
    x, y, _, _ = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="b", save_freq=3, log_history=False,
                          spool_dir=spool(tmp_path))
    model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[cb])   # 4 batches an epoch
    assert cb.flush(timeout=60)
    assert [v["epoch"] for v in reg.versions(name, run="b", order_by="version", order="asc")] \
        == [0, 1]                              # after batches 3 and 6 of 8
    assert reg.history(name, run="b")["runs"][0]["epochs"] == [0, 1]   # from the uploads' metrics


def test_rejected_checkpoint_warns_and_training_goes_on(reg, name, data, tmp_path):
    x, y, _, _ = data
    reg.create_model(name, architecture=seed_cnn())
    wrong = seed_cnn(head=12)                 # Dense(12): not the registered architecture
    cb = StrataCheckpoint(reg, name, run="bad", spool_dir=spool(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = wrong.fit(x, y % 12, epochs=2, verbose=0, callbacks=[cb])
        assert cb.flush(timeout=60)
    assert len(hist.history["loss"]) == 2
    refused = [str(w.message) for w in caught if issubclass(w.category, StrataWarning)
               and "refused" in str(w.message)]
    assert len(refused) == 2
    assert "invalid_weights" in refused[0] and '"expected": [5408, 10]' in refused[0]
    assert '"found": [5408, 12]' in refused[0]
    assert reg.versions(name) == []


def test_spool_bound_drops_oldest_keeps_newest(data, tmp_path):
    """No server at all: the spool fills up to its bound; the oldest waiting
    checkpoints go, the newest stays."""
    x, y, _, _ = data
    from conftest import free_port
    dead = strata.Registry(f"http://127.0.0.1:{free_port()}", timeout=2)
    model = seed_cnn()
    model.fit(x, y, epochs=1, verbose=0)      # the optimizer's variables exist: full size
    probe = str(tmp_path / "probe.weights.h5")
    model.save_weights(probe)
    one = os.path.getsize(probe)
    cb = StrataCheckpoint(dead, "nowhere", run="full", spool_dir=spool(tmp_path),
                          max_spool_bytes=int(one * 2.5), drain_timeout=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=6, verbose=0, callbacks=[cb])
    dropped = [str(w.message) for w in caught if "dropped the oldest" in str(w.message)]
    left = sorted(f for f in os.listdir(spool(tmp_path)) if f.endswith(".weights.h5"))
    metas = [f for f in os.listdir(spool(tmp_path)) if f.endswith(".json")]
    size = sum(os.path.getsize(os.path.join(spool(tmp_path), f)) for f in left)
    assert len(left) == 2 and size <= one * 2.5
    assert len(dropped) == 4
    assert "epoch 0)" in dropped[0] and "epoch 3)" in dropped[-1]
    assert len(metas) == 2 + 6                # 2 checkpoints + 6 history posts (never dropped)


# ---- example 3: transfer learning -------------------------------------------------

def test_example3_transfer_all_but_the_head(reg, name, data, tmp_path):
    x, y, _, _ = data
    pre = seed_cnn()
    pre.fit(x, y, epochs=2, verbose=0)
    reg.create_model(name, architecture=pre)
    reg.upload(name, pre, epoch=1, run="pre", tags=["prod"])

    new = seed_cnn(head=5, head_name="new_head")
    head_init = [w.copy() for w in new.get_layer("new_head").get_weights()]
    loaded = load_weights(new, reg, name, ref="prod", transfer=True)
    assert loaded == ["conv2d"]
    for a, b in zip(new.get_layer("conv2d").get_weights(), pre.get_layer("conv2d").get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(new.get_layer("new_head").get_weights(), head_init):
        np.testing.assert_array_equal(a, b)
    hist = new.fit(x, y % 5, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    # the same with exclude=: all layers but the old head, into a same-named head
    same = seed_cnn(head=10)
    loaded = load_weights(same, reg, name, ref="prod", exclude=["dense"])
    assert "dense" not in loaded
    np.testing.assert_array_equal(same.get_layer("conv2d").get_weights()[0],
                                  pre.get_layer("conv2d").get_weights()[0])
    assert not np.array_equal(same.get_layer("dense").get_weights()[0],
                              pre.get_layer("dense").get_weights()[0])


# ---- 2b: Keras' own RemoteMonitor, no strata package --------------------------------

def test_remote_monitor_posts_history(server, reg, name, data):
    x, y, xv, yv = data
    reg.create_model(name)
    mon = keras.callbacks.RemoteMonitor(root=server.url, path=f"/v1/models/{name}/history?run=rm",
                                        send_as_json=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = seed_cnn().fit(x, y, validation_data=(xv, yv), epochs=3, verbose=0,
                              callbacks=[mon])
    assert not [w for w in caught if "RemoteMonitor" in str(w.message)]
    run = reg.history(name, run="rm")["runs"][0]
    assert run["epochs"] == [0, 1, 2]
    for k in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert run["metrics"][k] == pytest.approx(hist.history[k], rel=1e-12)


def test_whole_model_checkpoints(reg, name, data, tmp_path):
    """save_weights_only=False: Keras 3 writes a .keras archive; strata takes
    it, and load_weights gets the weights back as keras3."""
    x, y, _, _ = data
    model = seed_cnn()
    cb = StrataCheckpoint(reg, name, run="whole", save_weights_only=False,
                          spool_dir=spool(tmp_path))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert cb.flush(timeout=60) and cb.problems == []
    (v,) = reg.versions(name, run="whole")
    assert v["format"] == "keras3-archive"
    back = seed_cnn()
    load_weights(back, reg, name, ref=v["version"])
    assert same_weights(model, back)
