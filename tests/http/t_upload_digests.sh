#!/usr/bin/env bash
# The digests an upload answers, checked against hashlib over what h5py reads:
# the blob digest (sha256 of the file) and every layer's digest (sha256 of its
# tensors' stored bytes in weight order; null without weights) and params, for
# a generated 16 MiB Keras 2 checkpoint (big enough for the upload's hashing
# thread and the parallel layer hashing: several layers, float16/32/64, a
# layer without weights) sent raw, as multipart and four at once, and for the
# mnist fixture (small: the inline paths). Then the sandboxed parser that each
# upload starts with its body: none is left behind by refused or cut-off
# uploads.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import h5py, numpy' 2>/dev/null; then
    echo "SKIPPED (loudly): h5py/numpy not importable by $PY — digest test did not run" >&2
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
start_server --threads 4

big=$TEST_DIR/big.h5
$PY - "$big" <<'EOF'
import sys
import h5py, numpy as np
rng = np.random.default_rng(20261130)
layers = [   # name, [(weight, shape, dtype)]
    ("conv_a", [("kernel", (3, 3, 64, 128), "<f4"), ("bias", (128,), "<f4")]),
    ("big_1", [("kernel", (1024, 2048), "<f4"), ("bias", (2048,), "<f4")]),
    ("dropout_1", []),
    ("big_2", [("kernel", (1024, 1536), "<f4"), ("bias", (1536,), "<f4")]),
    ("half", [("kernel", (512, 512), "<f2")]),
    ("dbl", [("kernel", (256, 256), "<f8"), ("bias", (256,), "<f8")]),
    ("tiny", [("bias", (3,), "<f4")]),
]
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
    f.attrs["backend"] = np.bytes_("tensorflow")
    f.attrs["keras_version"] = np.bytes_("2.2.4")
    for n, ws in layers:
        g = f.create_group(n)
        g.attrs["weight_names"] = np.array([("%s/%s:0" % (n, w)).encode() for w, _, _ in ws], dtype="S")
        for w, shape, dt in ws:
            g.create_dataset("%s/%s:0" % (n, w), data=(rng.standard_normal(shape) * 0.05).astype(dt))
EOF
check "generated checkpoint is over 12 MiB" test "$(stat -c %s "$big")" -gt $((12 << 20))

# expected FILE: [{name, digest, params}] for a Keras 2 save_weights layout,
# from h5py's reading of each dataset (its stored dtype, so its stored bytes).
expected() {
    $PY - "$1" <<'EOF'
import hashlib, json, sys
import h5py, numpy as np
out = []
with h5py.File(sys.argv[1], "r") as f:
    root = f["model_weights"] if "model_weights" in f else f
    for n in root.attrs["layer_names"]:
        n = n.decode() if isinstance(n, bytes) else str(n)
        g = root[n]
        names = [w.decode() if isinstance(w, bytes) else str(w) for w in g.attrs.get("weight_names", [])]
        h, params = hashlib.sha256(), 0
        for w in names:
            a = g[w][()]
            h.update(np.ascontiguousarray(a).tobytes())
            params += a.size
        out.append({"name": n, "digest": "sha256:" + h.hexdigest() if names else None, "params": params})
print(json.dumps(out, sort_keys=True))
EOF
}
got_layers() { printf '%s' "$BODY" | jq -cS '[.layers[] | {name, digest, params}]'; }
want_big=$(expected "$big" | jq -cS .)
sha_big=$(sha256sum "$big" | cut -d' ' -f1)
check "h5py sees the 7 layers of the generated file" test "$(jq length <<<"$want_big")" -eq 7

req POST /v1/models -d '{"name":"d"}'
expect_status 201 "create model"
req POST /v1/models/d/versions -H 'Content-Type: application/x-hdf5' -T "$big"
expect_status 201 "upload the generated checkpoint (raw body)"
expect_jq '.digest' "sha256:$sha_big" "raw: blob digest is sha256 of the file"
expect_jq '.size' "$(stat -c %s "$big")" "raw: size"
check "raw: layer digests and params equal hashlib over h5py's tensors" test "$(got_layers)" = "$want_big"
expect_jq '[.layers[] | select(.name == "dropout_1") | .digest] | .[0]' null "raw: a layer without weights has a null digest"

req POST /v1/models/d/versions -F "weights=@$big" -F 'metadata={"tags":["mp"]}'
expect_status 201 "upload the generated checkpoint (multipart)"
expect_jq '.digest' "sha256:$sha_big" "multipart: blob digest"
check "multipart: layer digests and params equal hashlib over h5py's tensors" test "$(got_layers)" = "$want_big"

# Four at once: each its own parser and hashing threads.
pids=()
for i in 1 2 3 4; do
    curl -sS -o "$TEST_DIR/par$i.json" -w '%{http_code}' -X POST -H 'Content-Type: application/x-hdf5' \
        -T "$big" "$BASE/v1/models/d/versions?tag=p$i" >"$TEST_DIR/par$i.code" &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4; do
    check "parallel upload $i answered 201 ($(cat "$TEST_DIR/par$i.code"))" test "$(cat "$TEST_DIR/par$i.code")" = 201
    BODY=$(cat "$TEST_DIR/par$i.json")
    expect_jq '.digest' "sha256:$sha_big" "parallel upload $i: blob digest"
    check "parallel upload $i: layer digests" test "$(got_layers)" = "$want_big"
done

if have_fixtures; then
    mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
    req POST /v1/models/d/versions -H 'Content-Type: application/x-hdf5' -T "$mnist"
    expect_status 201 "upload the mnist fixture"
    expect_jq '.digest' "sha256:$(sha256sum "$mnist" | cut -d' ' -f1)" "mnist: blob digest"
    check "mnist: layer digests and params equal hashlib over h5py's tensors" \
        test "$(got_layers)" = "$(expected "$mnist" | jq -cS .)"
    # the same digests when the upload is validated against its architecture
    # (eng_validate asks for the digests of the layers the model uses only)
    req POST "/v1/architectures?name=mnist" --data-binary @"$KERAS/k2_2.1.2_mnist_cnn.model.json"
    arch=$(printf '%s' "$BODY" | jq -r .id)
    req POST /v1/models -d "{\"name\":\"da\",\"architecture\":\"$arch\"}"
    expect_status 201 "model with the mnist architecture"
    req POST /v1/models/da/versions -H 'Content-Type: application/x-hdf5' -T "$mnist"
    expect_status 201 "mnist fixture against its architecture"
    expect_jq '.validation.status' "passed" "validated"
    check "with an architecture: digests of the layers with weights equal hashlib's" \
        test "$(printf '%s' "$BODY" | jq -cS '[.layers[] | select(.digest != null) | {name, digest, params}]')" = \
             "$(expected "$mnist" | jq -cS '[.[] | select(.digest != null)]')"
fi

# ---- the parser started with the body never outlives its upload ----------------
children() { pgrep -P "$SERVER_PID" | wc -l; }
no_children() {   # up to 5 s: a cut connection is noticed by the server's poll
    local i
    for i in $(seq 1 50); do [ "$(children)" -eq 0 ] && return 0; sleep 0.1; done
    return 1
}
zero=$(printf '0%.0s' $(seq 1 64))
req POST "/v1/models/d/versions?digest=sha256:$zero" -H 'Content-Type: application/x-hdf5' -T "$big"
expect_error 400 digest_mismatch "declared digest mismatch"
check "no parser left after a refused upload ($(children) children)" no_children
req POST /v1/models/d/versions -H 'Content-Type: application/x-hdf5' --data-binary ''
expect_status 400 "empty body refused"
check "no parser left after an empty upload ($(children) children)" no_children
curl -sS -o /dev/null --limit-rate 2M --max-time 1 -X POST -H 'Content-Type: application/x-hdf5' \
    -T "$big" "$BASE/v1/models/d/versions" 2>/dev/null
check "no parser left after an upload cut off mid-body ($(children) children)" no_children
check "no temp file left ($(data_state))" test "$(find "$DATA/tmp" -type f | wc -l)" -eq 0
req GET /v1/models/d
expect_jq '.versions' "$([ -f "$KERAS/SOURCES.md" ] && echo 7 || echo 6)" "only the accepted uploads made versions"
finish
