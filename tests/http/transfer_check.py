#!/usr/bin/python3
"""tests/http/transfer_check.py — read a derived (partial / converted) weight
file the way Keras' loaders walk it and compare it with the original.

  transfer_check.py legacy  PARTIAL ORIGINAL a,b,c
      Keras 2 by_name: root layer_names (must be exactly a,b,c in that order)
      → each group's weight_names → datasets by those names; every dataset
      bitwise equal to the original's (same layer, same weight_names entry);
      backend / keras_version as in the original; nothing else in the file.
  transfer_check.py keras3  PARTIAL ORIGINAL g1,g2
      Keras 3: layers/<g>/vars/<i> for exactly g1,g2 (plus the root vars
      group), each equal to the original's layers/<g>/vars/<i>.
  transfer_check.py k2tok3  PARTIAL(keras3) ORIGINAL(keras2) k2name=k3group,…
  transfer_check.py k3tok2  PARTIAL(keras2) ORIGINAL(keras3) k2name=k3group,…
      a converted file: every weight of the layer, in order, equal.
  transfer_check.py modify  IN OUT layer   (copy IN, add 1.0 to one layer's first weight)
Exit 0 when the check holds; prints the reason otherwise.
"""
import sys
import shutil
import h5py
import numpy as np


def s(x):
    return x.decode("utf8") if hasattr(x, "decode") else str(x)


def attr_list(g, name):
    if name in g.attrs:
        return [s(n) for n in g.attrs[name]]
    out, i = [], 0
    while "%s%d" % (name, i) in g.attrs:
        out += [s(n) for n in g.attrs["%s%d" % (name, i)]]
        i += 1
    return out


def legacy_root(f):
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and "model_weights" in f:
        return f["model_weights"]
    return f


def legacy_weights(f):
    """{layer: [(weight name, array)]} as load_weights_from_hdf5_group_by_name reads it."""
    root = legacy_root(f)
    out = {}
    for ln in attr_list(root, "layer_names"):
        g = root[ln]
        out[ln] = [(wn, np.asarray(g[wn])) for wn in attr_list(g, "weight_names")]
    return out


def datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return set(names)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def fail(msg):
    print("transfer_check: " + msg)
    sys.exit(1)


def check_legacy(part, orig, want):
    p, o = h5py.File(part, "r"), h5py.File(orig, "r")
    names = attr_list(p, "layer_names")
    if names != want:
        fail("layer_names %s, expected %s" % (names, want))
    for a in ("backend", "keras_version"):
        if (a in legacy_root(o).attrs or a in o.attrs) != (a in p.attrs):
            fail("root attribute %s presence differs" % a)
        if a in p.attrs:
            ov = o.attrs[a] if a in o.attrs else legacy_root(o).attrs[a]
            if s(p.attrs[a]) != s(ov):
                fail("%s %r, original %r" % (a, s(p.attrs[a]), s(ov)))
    pw, ow = legacy_weights(p), legacy_weights(o)
    listed = set()
    for ln in names:
        if [n for n, _ in pw[ln]] != [n for n, _ in ow[ln]]:
            fail("layer %s weight_names %s, original %s" % (ln, [n for n, _ in pw[ln]], [n for n, _ in ow[ln]]))
        for (n, a), (_, b) in zip(pw[ln], ow[ln]):
            if not same(a, b):
                fail("layer %s weight %s differs from the original" % (ln, n))
            listed.add(ln + "/" + n)
    extra = datasets(p) - listed
    if extra:
        fail("datasets no layer lists: %s" % sorted(extra))


def k3_vars(f, group):
    g = f["layers/" + group + "/vars"]
    return [np.asarray(g[str(i)]) for i in range(len(g))]


def check_keras3(part, orig, want):
    p, o = h5py.File(part, "r"), h5py.File(orig, "r")
    if "vars" not in p or "layers" not in p:
        fail("no root vars / layers group")
    got = sorted(k for k in p["layers"].keys())
    if got != sorted(want):
        fail("layers/ holds %s, expected %s" % (got, sorted(want)))
    for gname in want:
        a, b = k3_vars(p, gname), k3_vars(o, gname)
        if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b)):
            fail("layers/%s/vars differ from the original" % gname)
    extra = {d for d in datasets(p) if not d.startswith("layers/")}
    if extra:
        fail("datasets outside layers/: %s" % sorted(extra))


def pairs(spec):
    return [tuple(x.split("=")) for x in spec.split(",") if x]


def check_k2tok3(part, orig, spec):
    p, o = h5py.File(part, "r"), h5py.File(orig, "r")
    ow = legacy_weights(o)
    want = pairs(spec)
    if sorted(p["layers"].keys()) != sorted(g for _, g in want):
        fail("layers/ holds %s, expected %s" % (sorted(p["layers"].keys()), [g for _, g in want]))
    for k2, k3 in want:
        a = k3_vars(p, k3)
        b = [x for _, x in ow[k2]]
        if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b)):
            fail("layers/%s/vars differ from %s's weights" % (k3, k2))
        if s(p["layers/" + k3 + "/vars"].attrs.get("name", b"")) != k2:
            fail("layers/%s/vars@name is not %s" % (k3, k2))


def check_k3tok2(part, orig, spec):
    p, o = h5py.File(part, "r"), h5py.File(orig, "r")
    pw = legacy_weights(p)
    want = pairs(spec)
    if attr_list(p, "layer_names") != [k2 for k2, _ in want]:
        fail("layer_names %s, expected %s" % (attr_list(p, "layer_names"), [k2 for k2, _ in want]))
    for k2, k3 in want:
        a = [x for _, x in pw[k2]]
        b = k3_vars(o, k3)
        if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b)):
            fail("layer %s differs from layers/%s/vars" % (k2, k3))
    if "keras_version" not in p.attrs or "backend" not in p.attrs:
        fail("keras_version / backend missing")


def modify(src, dst, layer):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        root = legacy_root(f)
        g = root[layer]
        wn = attr_list(g, "weight_names")[0]
        g[wn][...] = np.asarray(g[wn]) + 1.0


def main():
    mode = sys.argv[1]
    if mode == "legacy":
        check_legacy(sys.argv[2], sys.argv[3], [x for x in sys.argv[4].split(",") if x])
    elif mode == "keras3":
        check_keras3(sys.argv[2], sys.argv[3], [x for x in sys.argv[4].split(",") if x])
    elif mode == "k2tok3":
        check_k2tok3(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "k3tok2":
        check_k3tok2(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "modify":
        modify(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
