#!/usr/bin/python3
"""tests/data/h5/make_cases.py — generates the HDF5 edge/hostile cases and the
expected tensor values used by tests/unit/test_engine_h5*.c.

Run with Debian's /usr/bin/python3 (h5py 3.7 + numpy), from anywhere:
    /usr/bin/python3 tests/data/h5/make_cases.py [FIXTURES_DIR]
FIXTURES_DIR defaults to ../shared/fixtures relative to the checkout.

Outputs (all in this folder, each < 50 KB):
  expected_values.tsv  h5py's reading of real Keras fixtures: per tensor
                       file, dataset path, element count, float64 sum, first
                       values (an independent reader to check ours against)
  expected_digests.tsv h5py's reading of each layer of the real fixtures:
                       file, layer, sha256 over the layer's tensors' raw
                       little-endian bytes in Keras order (legacy:
                       weight_names; Keras 3: vars 0..n-1), "-" when none
  case_*.h5 / *.keras / *.bin   one construct each; the expected verdict of
                       each is in the test's table, not here.
h5py writes with libhdf5 itself, so these files are what Keras' own h5py
would produce for the same calls.
"""
import io
import os
import sys
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures")
KERAS = os.path.join(FIX, "keras")
VL = h5py.string_dtype("ascii")
VLU = h5py.string_dtype("utf-8")


def out(name):
    return os.path.join(HERE, name)


def legacy(f, layers, vlen=False):
    """Keras 2 save_weights layout: root layer_names, per layer weight_names,
    datasets at <layer>/<layer>/<w>:0. layers: [(name, [(wname, array)])]."""
    names = [n.encode() for n, _ in layers]
    f.attrs["layer_names"] = np.array(names, dtype=VL if vlen else None)
    f.attrs["keras_version"] = "2.1.2"
    f.attrs["backend"] = "tensorflow"
    for lname, ws in layers:
        g = f.create_group(lname)
        wn = [w.encode() for w, _ in ws]
        g.attrs["weight_names"] = np.array(wn, dtype=VL if vlen else None) if wn else np.zeros((0,), "f8")
        for w, arr in ws:
            g.create_dataset(w, data=arr)


def expected_values():
    rows = []

    def take(fname, h5, prefix=""):
        # every dataset of the weight groups (skip optimizer state), in path order
        paths = []
        h5.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) else None)
        for p in sorted(paths):
            if p.startswith("optimizer"):
                continue
            ds = h5[p]
            a = np.asarray(ds[()], dtype=np.float64).ravel()
            first = ",".join(repr(float(np.float32(x))) for x in a[:6])
            off = ds.id.get_offset()
            rows.append("\t".join([fname, prefix + p, str(a.size), repr(float(a.sum())),
                                   str(-1 if off is None else off), first]))

    for fname in sorted(os.listdir(KERAS)):
        path = os.path.join(KERAS, fname)
        if fname.endswith(".h5"):
            with h5py.File(path, "r") as h5:
                take(fname, h5)
        elif fname.endswith(".keras"):
            with zipfile.ZipFile(path) as z:
                data = z.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as h5:
                take(fname, h5)
    for fname in ("case_dtypes.h5",):
        with h5py.File(out(fname), "r") as h5:
            take(fname, h5)
    with open(out("expected_values.tsv"), "w") as fo:
        fo.write("# file\tdataset\telements\tsum(float64)\toffset(h5py get_offset, inner image)\tfirst values\n")
        fo.write("\n".join(rows) + "\n")


def expected_digests():
    import hashlib

    def num(x):
        return int(x)

    def legacy_rows(fname, h5, container):
        c = h5[container] if container else h5
        names = c.attrs["layer_names"]
        for ln in names:
            ln = ln.decode() if isinstance(ln, bytes) else ln
            g = c[ln]
            wn = g.attrs["weight_names"]
            if len(wn) == 0 or wn.dtype.kind == "f":
                yield ln, "-"
                continue
            h = hashlib.sha256()
            for w in wn:
                w = w.decode() if isinstance(w, bytes) else w
                h.update(np.ascontiguousarray(g[w][()]).tobytes())
            yield ln, "sha256:" + h.hexdigest()

    def k3_rows(h5):
        def visit(g, name):
            if "vars" in g:
                v = g["vars"]
                keys = sorted(v.keys(), key=num)
                if keys:
                    h = hashlib.sha256()
                    for key in keys:
                        h.update(np.ascontiguousarray(v[key][()]).tobytes())
                    yield name, "sha256:" + h.hexdigest()
                else:
                    yield name, "-"
            for child in sorted(g.keys()):
                if child != "vars" and isinstance(g[child], h5py.Group):
                    yield from visit(g[child], (name + "/" if name else "") + child)
        yield from visit(h5["layers"], "")

    rows = []
    for fname in sorted(os.listdir(KERAS)):
        path = os.path.join(KERAS, fname)
        if fname.endswith(".h5"):
            with h5py.File(path, "r") as h5:
                if "layer_names" in h5.attrs:
                    it = legacy_rows(fname, h5, "")
                elif "model_weights" in h5:
                    it = legacy_rows(fname, h5, "model_weights")
                else:
                    it = k3_rows(h5)
                rows += ["\t".join([fname, ln, d]) for ln, d in it]
        elif fname.endswith(".keras"):
            with zipfile.ZipFile(path) as z:
                data = z.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as h5:
                rows += ["\t".join([fname, ln, d]) for ln, d in k3_rows(h5)]
    with open(out("expected_digests.tsv"), "w") as fo:
        fo.write("# file\tlayer\tdigest of the raw tensor bytes in order, or -\n")
        fo.write("\n".join(rows) + "\n")


def cases():
    rng = np.random.default_rng(7)
    k = lambda *s: rng.standard_normal(s).astype("f4")

    # accepted: split layer_names0/1 and weight_names0/1 (Keras splits > 64 KiB)
    with h5py.File(out("case_split_names.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2)), ("dense_1/bias:0", k(2))]),
                   ("dropout_1", []), ("dense_2", [("dense_2/kernel:0", k(2, 2))])])
        del f.attrs["layer_names"]
        f.attrs["layer_names0"] = np.array([b"dense_1", b"dropout_1"])
        f.attrs["layer_names1"] = np.array([b"dense_2"])
        g = f["dense_1"]
        del g.attrs["weight_names"]
        g.attrs["weight_names0"] = np.array([b"dense_1/kernel:0"])
        g.attrs["weight_names1"] = np.array([b"dense_1/bias:0"])

    # accepted: vlen ASCII layer_names / weight_names (tf.keras 2.x with h5py 3)
    with h5py.File(out("case_vlen_names.h5"), "w") as f:
        legacy(f, [("conv2d", [("conv2d/kernel:0", k(3, 3, 1, 2)), ("conv2d/bias:0", k(2))]),
                   ("flatten", [])], vlen=True)
    # accepted: vlen UTF-8 names with a non-ASCII layer name
    with h5py.File(out("case_utf8_names.h5"), "w") as f:
        f.attrs.create("layer_names", ["dénse".encode()], dtype=VLU)
        g = f.create_group("dénse")
        g.attrs.create("weight_names", ["dénse/kernel:0".encode()], dtype=VLU)
        g.create_dataset("dénse/kernel:0", data=k(2, 2))

    # refused: weight_names lists a dataset that does not exist
    with h5py.File(out("case_missing_weight.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2))])])
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0", b"dense_1/bias:0"])
    # refused: layer_names lists a group that does not exist
    with h5py.File(out("case_missing_layer.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2))])])
        f.attrs["layer_names"] = np.array([b"dense_1", b"dense_9"])
    # refused: weight_names entry that is an absolute path (would leave the layer group)
    with h5py.File(out("case_abs_weight.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2))]), ("other", [("w", k(2))])])
        f["dense_1"].attrs["weight_names"] = np.array([b"/other/w"])

    # refused: external link inside a layer group
    with h5py.File(out("case_external_link.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2))])])
        del f["dense_1/dense_1/kernel:0"]
        f["dense_1/dense_1/kernel:0"] = h5py.ExternalLink("/etc/passwd_weights.h5", "/w")
    # refused: soft link as a weight
    with h5py.File(out("case_soft_link.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/kernel:0", k(3, 2))]), ("dense_2", [("dense_2/kernel:0", k(3, 2))])])
        del f["dense_2/dense_2/kernel:0"]
        f["dense_2/dense_2/kernel:0"] = h5py.SoftLink("/dense_1/dense_1/kernel:0")
    # refused: dataset with external raw storage
    with h5py.File(out("case_external_storage.h5"), "w") as f:
        legacy(f, [("dense_1", [])])
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
        f["dense_1"].create_group("dense_1")
        f["dense_1/dense_1"].create_dataset("kernel:0", shape=(3, 2), dtype="f4",
                                            external=[("/etc/hostname", 0, 24)])
    # refused: virtual dataset
    with h5py.File(out("case_virtual.h5"), "w") as f:
        legacy(f, [("dense_1", [("dense_1/src", k(3, 2))])])
        layout = h5py.VirtualLayout(shape=(3, 2), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "/dense_1/dense_1/src", shape=(3, 2))
        f["dense_1"].create_virtual_dataset("dense_1/kernel:0", layout)
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
    # refused: gzip-compressed dataset
    with h5py.File(out("case_gzip.h5"), "w") as f:
        legacy(f, [("dense_1", [])])
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
        f["dense_1"].create_dataset("dense_1/kernel:0", data=k(30, 20), compression="gzip")
    # refused: chunked without filters
    with h5py.File(out("case_chunked.h5"), "w") as f:
        legacy(f, [("dense_1", [])])
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
        f["dense_1"].create_dataset("dense_1/kernel:0", data=k(30, 20), chunks=(10, 10))
    # refused: compact storage
    with h5py.File(out("case_compact.h5"), "w") as f:
        legacy(f, [("dense_1", [])])
        f["dense_1"].attrs["weight_names"] = np.array([b"dense_1/kernel:0"])
        g = f["dense_1"].create_group("dense_1")
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        sp = h5py.h5s.create_simple((3, 2))
        ds = h5py.h5d.create(g.id, b"kernel:0", h5py.h5t.IEEE_F32LE, sp, dcpl=dcpl)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, k(3, 2))
    # refused: HDF5 without a Keras layout
    with h5py.File(out("case_no_layout.h5"), "w") as f:
        f.create_dataset("data", data=np.arange(10, dtype="f4"))
        f.attrs["note"] = "not keras"
    # refused: not HDF5 at all
    with open(out("case_not_hdf5.bin"), "wb") as fo:
        fo.write(b"This is not an HDF5 file.\n" * 20)

    # accepted: Keras 3 layout with every convertible dtype, a big-endian
    # float32 (dtype other), nested sub-layers, a non-empty root vars group,
    # a subclassed-model attribute group and ignored optimizer state
    with h5py.File(out("case_dtypes.h5"), "w") as f:
        v = f.create_group("layers/mixed/vars")
        v.attrs["name"] = "mixed"
        v["0"] = rng.standard_normal((2, 3))                       # float64
        v["1"] = rng.standard_normal((5,)).astype("f2")            # float16
        v["2"] = np.array([-3, 0, 7, 2**40], dtype="<i8")          # int64
        v["3"] = np.array([-5, 9], dtype="<i4")                    # int32
        v["4"] = np.array([1.5, -2.25], dtype="<f4")
        v["5"] = np.float32(3.0)                                   # rank 0
        v["6"] = np.zeros((0, 4), dtype="f4")                      # empty tensor
        v["10"] = np.array([1.0, 2.0], dtype=">f4")                # big endian -> other; numeric order puts 10 last
        for i in range(7, 10):
            v[str(i)] = np.full((1,), i, dtype="f4")
        f.create_group("layers/seq/vars").attrs["name"] = "augment"
        f.create_group("layers/seq/layers/flip/vars").attrs["name"] = "flip"
        f.create_group("layers/mha/vars").attrs["name"] = "mha"
        f["layers/mha/query_dense/vars/0"] = k(4, 4)
        f.create_group("vars").attrs["name"] = "model"
        f["vars/0"] = k(3)
        f["encoder/vars/0"] = k(2, 2)
        f.create_group("compile_metrics/vars")
        f["optimizer/vars/0"] = np.int64(5)
        f["optimizer/vars/1"] = k(7)

    # refused: Keras 3 vars with a gap (0, 2)
    with h5py.File(out("case_k3_gap.h5"), "w") as f:
        f["layers/dense/vars/0"] = k(2, 2)
        f["layers/dense/vars/2"] = k(2)
    # refused (bounded, no hang): hard-link cycle below layers/
    with h5py.File(out("case_k3_cycle.h5"), "w") as f:
        f["layers/dense/vars/0"] = k(2, 2)
        f["layers/dense/inner"] = f["layers/dense"]
    # refused: external link below layers/
    with h5py.File(out("case_k3_extlink.h5"), "w") as f:
        f["layers/dense/vars/0"] = k(2, 2)
        f["layers/evil"] = h5py.ExternalLink("other.h5", "/layers/dense")

    # .keras archives built like Keras does (zipfile, members STORED)
    inner = io.BytesIO()
    with h5py.File(inner, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v["0"] = k(4, 3)
        v["1"] = k(3)
        f.create_group("vars")
    cfg = b'{"class_name": "Sequential", "config": {"name": "s", "layers": []}}'
    meta = b'{"keras_version": "3.99.0", "date_saved": "2026-01-01@00:00:00"}'
    for name, comp in (("case_stored.keras", zipfile.ZIP_STORED), ("case_deflated.keras", zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(out(name), "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", meta)
            z.writestr("config.json", cfg)
            z.writestr("model.weights.h5", inner.getvalue(), compress_type=comp)
    with zipfile.ZipFile(out("case_no_weights.keras"), "w") as z:
        z.writestr("config.json", cfg)
    # refused: the member is not HDF5
    with zipfile.ZipFile(out("case_inner_not_hdf5.keras"), "w") as z:
        z.writestr("config.json", cfg)
        z.writestr("model.weights.h5", b"not hdf5 at all" * 10)
    # refused: central directory points model.weights.h5 at a bogus local header
    data = bytearray(open(out("case_stored.keras"), "rb").read())
    cd = data.rfind(b"PK\x01\x02")  # last central entry = model.weights.h5
    assert data[cd + 46:cd + 46 + 16] == b"model.weights.h5"
    data[cd + 42:cd + 46] = (0xFFFFFF00).to_bytes(4, "little")
    open(out("case_zip_bad_offset.keras"), "wb").write(bytes(data))


if __name__ == "__main__":
    cases()
    expected_values()
    expected_digests()
    for n in sorted(os.listdir(HERE)):
        sz = os.path.getsize(out(n))
        assert sz < 50 * 1024 or n.endswith(".tsv"), (n, sz)
        print(f"{sz:8d} {n}")
