"""strata.Registry against the real server, without Keras: every error
answer arrives as the right StrataError subclass with the server's code,
message and details; bodies stream both ways with flat memory; a failed
download leaves no file behind. The weight files are Keras 2 save_weights
layouts written here with h5py.
"""
import hashlib
import os
import subprocess
import tracemalloc

import h5py
import numpy as np
import pytest

import strata
from conftest import STRATA_BIN, Server, free_port

DENSE_JSON = ('{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": '
              '"Dense", "config": {"name": "dense", "units": 3, "activation": "linear", '
              '"use_bias": true, "batch_input_shape": [null, 4], "dtype": "float32"}}]}, '
              '"keras_version": "2.15.0", "backend": "tensorflow"}')


def keras2_weights(path, layers):
    """A Keras 2 save_weights file: layers = {name: [(weight, array), ...]}."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.15.0"
        for lname, ws in layers.items():
            g = f.create_group(lname)
            g.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w, _ in ws]
            for w, arr in ws:
                g.create_dataset(f"{lname}/{w}:0", data=arr)
    return path


def dense(path, units=3, inputs=4, seed=0):
    rng = np.random.default_rng(seed)
    return keras2_weights(path, {"dense": [
        ("kernel", rng.normal(size=(inputs, units)).astype("float32")),
        ("bias", rng.normal(size=(units,)).astype("float32"))]})


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return "sha256:" + h.hexdigest()


def test_defaults_from_environment(monkeypatch):
    monkeypatch.setenv("STRATA_URL", "http://example.invalid:9/prefix/")
    monkeypatch.setenv("STRATA_TOKEN", "t0k")
    r = strata.Registry()
    assert r.url == "http://example.invalid:9/prefix" and r.token == "t0k"
    monkeypatch.delenv("STRATA_URL")
    assert strata.Registry().url == "http://127.0.0.1:8080"


def test_wrong_url_is_connection_failed():
    r = strata.Registry(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(strata.ConnectionFailed) as e:
        r.models()
    assert e.value.status is None and isinstance(e.value, strata.StrataError)
    assert "cannot reach strata" in str(e.value)
    with pytest.raises(strata.ConnectionFailed):
        strata.Registry("ftp://host/")


def test_not_found_conflict_and_exist_ok(reg, name):
    with pytest.raises(strata.NotFound) as e:
        reg.model(name)
    assert e.value.status == 404 and e.value.code == "not_found" and name in e.value.message
    m = reg.create_model(name, architecture=DENSE_JSON, description="d")
    assert m["name"] == name
    with pytest.raises(strata.Conflict) as e:
        reg.create_model(name)
    assert e.value.status == 409 and e.value.code == "conflict"
    assert reg.create_model(name, exist_ok=True)["name"] == name
    with pytest.raises(strata.NotFound):
        reg.version(name, "latest")
    with pytest.raises(strata.BadRequest) as e:
        reg.model("bad name")
    assert e.value.status == 400


def test_invalid_weights_problems_readable(reg, name, tmp_path):
    reg.create_model(name, architecture=DENSE_JSON)
    with pytest.raises(strata.InvalidWeights) as e:
        reg.upload(name, dense(str(tmp_path / "w.h5"), units=5))
    err = e.value
    assert err.status == 422 and err.code == "invalid_weights"
    assert {"layer": "dense", "weight": "kernel", "expected": [4, 3], "found": [4, 5]} in \
        [{k: p.get(k) for k in ("layer", "weight", "expected", "found")} for p in err.problems]
    assert reg.versions(name) == []
    with pytest.raises(strata.InvalidArchitecture) as e:
        reg.register_architecture('{"class_name": "Sequential", "config": {"layers": '
                                  '[{"class_name": "NoSuchLayer", "config": {"name": "x"}}]}}')
    assert e.value.status == 422 and e.value.code == "invalid_architecture"


def test_upload_version_tags_and_digest(reg, name, tmp_path):
    reg.create_model(name, architecture=DENSE_JSON)
    p = dense(str(tmp_path / "w.h5"))
    v = reg.upload(name, p, epoch=3, run="r1", metrics={"loss": np.float32(0.25), "bad": float("nan")},
                   tags=["candidate"], notes="first", digest=sha256(p))
    assert (v["version"], v["epoch"], v["run"], v["digest"]) == (1, 3, "r1", sha256(p))
    assert v["metrics"] == {"loss": 0.25} and "candidate" in v["tags"]
    with pytest.raises(strata.BadRequest) as e:
        reg.upload(name, p, digest="sha256:" + "0" * 64)
    assert e.value.code == "digest_mismatch"
    assert [x["version"] for x in reg.versions(name)] == [1]
    v2 = reg.upload(name, dense(str(tmp_path / "w2.h5"), seed=1), epoch=4, run="r1")
    assert reg.set_tag(name, "prod", 1)["version"] == 1
    with pytest.raises(strata.Conflict) as e:
        reg.set_tag(name, "prod", v2["version"], expected_version=2)
    assert e.value.details.get("current_version", e.value.details.get("version")) == 1
    reg.set_tag(name, "prod", v2["version"], expected_version=1)
    with pytest.raises(strata.Conflict):
        reg.set_tag(name, "prod", 1, expected_version=None)     # only if it does not exist
    assert {t["tag"]: t["version"] for t in reg.tags(name)}["prod"] == 2
    assert sorted(h["to_version"] for h in reg.tag_history(name, "prod")) == [1, 2]
    reg.delete_tag(name, "prod")
    assert "prod" not in {t["tag"] for t in reg.tags(name)}
    assert reg.versions(name, run="r1", order_by="epoch", order="desc", limit=1)[0]["epoch"] == 4
    d = reg.diff(name, 1, 2)
    assert [la["status"] for la in d["layers"]] == ["changed"]
    assert reg.layers(name, 1)[0]["name"] == "dense"
    c = reg.compatibility(name, 1, DENSE_JSON)
    assert c["layers"][0]["status"] == "match"
    with pytest.raises(strata.Conflict):
        reg.delete_model(name)
    reg.delete_model(name, force=True)
    with pytest.raises(strata.NotFound):
        reg.model(name)


def test_download_streams_and_never_leaves_half_a_file(reg, name, tmp_path):
    """A 64 MiB checkpoint goes up and comes down with the client's traced
    memory a few MiB; a failed download leaves nothing."""
    reg.create_model(name)
    big = keras2_weights(str(tmp_path / "big.h5"), {"dense": [
        ("kernel", np.random.default_rng(1).random((4096, 4096), dtype=np.float32))]})
    size = os.path.getsize(big)
    assert size > 64 << 20
    tracemalloc.start()
    try:
        v = reg.upload(name, big)
        up_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        out = reg.download(name, v["version"], str(tmp_path))       # a directory: server's name
        down_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert v["size"] == size and os.path.basename(out) == f"{name}-v1.h5"
    assert sha256(out) == sha256(big) == v["digest"]
    assert up_peak < 8 << 20 and down_peak < 8 << 20, (up_peak, down_peak)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(strata.NotFound):
        reg.download(name, 99, str(tmp_path / "nope.h5"))
    with pytest.raises(strata.BadRequest):
        reg.download(name, 1, str(tmp_path / "nope.h5"), layers=["no_such_layer"])
    assert sorted(os.listdir(tmp_path)) == before


def test_history_calls(reg, name):
    reg.create_model(name)
    assert reg.log_metrics(name, "r1", 0, {"loss": 1.0, "acc": np.float64(0.5)})["epochs_added"] == 1
    r = reg.log_history(name, "r1", {"loss": [0.9, 0.8], "acc": [0.6, None]}, initial_epoch=1)
    assert r["epochs_added"] == 2
    h = reg.history(name, run="r1", metrics=["loss"])["runs"][0]
    assert h["epochs"] == [0, 1, 2] and h["metrics"] == {"loss": [1.0, 0.9, 0.8]}
    assert [x["run"] for x in reg.runs(name)] == ["r1"]
    with pytest.raises(strata.BadRequest) as e:
        reg.log_history(name, "r1", {"loss": [1.0, 2.0], "acc": [1.0]})
    assert e.value.details.get("metric") == "acc"


@pytest.fixture(scope="module")
def auth_server():
    s = Server(extra=["--auth"])
    tokens = {}
    for scope in ("read", "write"):
        out = subprocess.run([STRATA_BIN, "token", "create", "--data", s.data, "--scope", scope,
                              "--name", scope], check=True, capture_output=True, text=True).stdout
        tokens[scope] = out.strip().split()[-1]
    s.start()
    yield s, tokens
    s.close()


def test_unauthorized_and_forbidden(auth_server):
    s, tokens = auth_server
    with pytest.raises(strata.Unauthorized) as e:
        strata.Registry(s.url).models()
    assert e.value.status == 401 and e.value.code == "unauthorized"
    with pytest.raises(strata.Unauthorized) as e:
        strata.Registry(s.url, token="not-a-token").models()
    assert e.value.status == 401
    reader = strata.Registry(s.url, token=tokens["read"])
    assert reader.models() == []
    with pytest.raises(strata.Unauthorized) as e:
        reader.create_model("m")
    assert e.value.status == 403 and e.value.code == "forbidden"
    writer = strata.Registry(s.url, token=tokens["write"])
    assert writer.create_model("m")["name"] == "m"
    assert [m["name"] for m in reader.models()] == ["m"]
