#!/usr/bin/env bash
# Partial layer sets served as segments: a cached skeleton (the derived
# file's metadata) around ranges of the version's blob, nothing copied.
# The answer must be exactly the file Keras/h5py read:
# - h5py reads every chosen tensor equal to the source's (transfer_check.py),
#   also for a .keras archive (ranges inside the zip) and a float16/float64 mix;
# - byte-identical across requests, across a restart and after the cache is
#   emptied, tampered with or gc'd; the ETag never changes;
# - Range requests inside a segment, on and across segment boundaries, over
#   several segments, suffix and open ranges equal the full body's bytes;
#   If-Range, 416, HEAD, If-None-Match;
# - deleting versions and gc never leaves an answer pointing at a missing blob.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
PY=/usr/bin/python3
CHECK="$PY $(dirname "$0")/transfer_check.py"
SRC=$TEST_DIR/src.h5
Q='layers=enc,pool,head'
start_server

get_file() {   # get_file PATH OUT [curl args]: body to OUT, headers in $HEADERS, STATUS
    local p=$1 o=$2; shift 2
    STATUS=$(curl -sS -D "$HEADERS" -o "$o" -w '%{http_code}' "$@" "$BASE$p")
}
header() { grep -i "^$1:" "$HEADERS" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# files handed to the sandbox since the server started (/metrics)
runs() { curl -sS "$BASE/metrics" | awk '$1 == "strata_sandbox_runs_total" {print $2}'; }

# A Keras 2 save_weights file: tensors of several dtypes and odd sizes, a
# layer without weights, tf.keras names (the intermediate group per layer).
$PY - "$SRC" <<'EOF'
import sys, h5py, numpy as np
rng = np.random.default_rng(7)
layers = {
    "enc":  [("kernel", rng.standard_normal((256, 1024), dtype=np.float32)), ("bias", rng.standard_normal(1024, dtype=np.float32))],
    "mid":  [("kernel", rng.standard_normal((512, 512)).astype(np.float16))],
    "pool": [],
    "head": [("kernel", rng.standard_normal((300, 7))), ("bias", rng.standard_normal(7))],
    "tail": [("kernel", rng.standard_normal((64, 64), dtype=np.float32))],
}
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["backend"] = b"tensorflow"; f.attrs["keras_version"] = b"2.15.0"
    f.attrs["layer_names"] = np.array([n.encode() for n in layers])
    for n, ws in layers.items():
        g = f.create_group(n)
        names = ["%s/%s:0" % (n, w) for w, _ in ws]
        g.attrs["weight_names"] = np.array([x.encode() for x in names]) if names else np.zeros(0)
        for name, (_, a) in zip(names, ws):
            g.create_dataset(name, data=a)
EOF

req POST /v1/models -d '{"name":"seg"}'
expect_status 201 "model without architecture"
req POST /v1/models/seg/versions -H 'Content-Type: application/x-hdf5' --data-binary @"$SRC"
expect_status 201 "upload"

# --- the answer is what h5py reads --------------------------------------------
R0=$(runs)
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p1.h5"
check "the upload's checked summary is reused: no sandbox run ($R0 -> $(runs))" test "$(runs)" = "$R0"
[ "$STATUS" = 200 ] && ok || bad "first request: status $STATUS"
ET=$(header ETag)
expect_header X-Strata-Layers enc,pool,head "X-Strata-Layers"
check "ETag is derived:<hex>" grep -Eq '^"derived:[0-9a-f]{64}"$' <<<"$ET"
check "h5py: the chosen layers, every tensor equal to the source's" $CHECK legacy "$TEST_DIR/p1.h5" "$SRC" enc,pool,head
HEX=${ET#\"derived:}; HEX=${HEX%\"}
MAP=$DATA/cache/$HEX.json
check "cache entry = skeleton + map, named by the ETag" test -f "$MAP" -a -f "$DATA/cache/$HEX.skel"
check "no tensor byte in cache/: the skeleton is small" test "$(stat -c %s "$DATA/cache/$HEX.skel")" -lt 65536
check "the map: pieces of the skeleton and of the blob, summing to the file" $PY - "$MAP" "$TEST_DIR/p1.h5" <<'EOF'
import sys, json, os
m = json.load(open(sys.argv[1])); p = m["pieces"]
kinds = {k for k, _, _ in p}
sys.exit(0 if kinds == {0, 1} and len(p) >= 5 and sum(l for _, _, l in p) == m["size"] == os.path.getsize(sys.argv[2]) else 1)
EOF

# --- byte-identical: again, after a restart, after the cache is emptied ----------
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p2.h5"
check "second request: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p2.h5"
check "second request: same ETag" test "$(header ETag)" = "$ET"
stop_server
start_server
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p3.h5"
check "after a restart: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p3.h5"
check "after a restart: same ETag" test "$(header ETag)" = "$ET"
check "a cached answer needs no summary: no sandbox run" test "$(runs)" = 0
rm -rf "$DATA/cache"/*
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p4.h5"
check "rebuilt after the cache was emptied: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p4.h5"
check "rebuilt: same ETag" test "$(header ETag)" = "$ET"
check "a rebuild after a restart reads the blob in the sandbox once" test "$(runs)" = 1
# a damaged entry is rebuilt, never served
printf 'X' | dd of="$DATA/cache/$HEX.skel" bs=1 seek=100 conv=notrunc status=none
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p5.h5"
check "skeleton with a flipped byte: rebuilt, same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p5.h5"
check "the second rebuild uses the remembered summary" test "$(runs)" = 1
truncate -s 64 "$DATA/cache/$HEX.skel"
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p5.h5"
check "truncated skeleton: rebuilt, same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p5.h5"
jq -c '.pieces[1][1] = 1e12' "$MAP" >"$MAP.x" && mv "$MAP.x" "$MAP"
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p5.h5"
check "map pointing past the blob: rebuilt, same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p5.h5"

# --- Range: inside, on and across segment boundaries -----------------------------
check "Range requests equal the full body's bytes" $PY - "$BASE/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/p1.h5" "$MAP" "$ET" <<'EOF'
import sys, json, urllib.request, urllib.error
url, full, m, etag = sys.argv[1], open(sys.argv[2], "rb").read(), json.load(open(sys.argv[3])), sys.argv[4]
size = len(full); bad = []
def get(h):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=h)) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
def want(a, b, spec=None, h=None):
    spec = spec or "bytes=%d-%d" % (a, b)
    st, hd, body = get(dict({"Range": spec}, **(h or {})))
    if st != 206 or body != full[a:b + 1] or hd["Content-Range"] != "bytes %d-%d/%d" % (a, b, size):
        bad.append("%s: %s %s %d bytes" % (spec, st, hd.get("Content-Range"), len(body)))
bounds, at = [], 0
for _, _, l in m["pieces"]:
    at += l; bounds.append(at)
bounds = bounds[:-1]
for b in bounds:
    for a, z in ((b - 1, b), (b, b), (b - 1, b - 1), (b - 7, b + 6), (b - 70000, b + 70000), (b, b + 4095), (b - 4096, b - 1)):
        a, z = max(0, a), min(size - 1, z)
        want(a, z)
mid = bounds[0] // 2
want(mid, mid + 100)                                   # inside the first segment
want(bounds[0] - 3, bounds[-1] + 3)                    # across every segment
want(size - 1, size - 1)
want(size - (size - bounds[-2] + 5), size - 1, "bytes=-%d" % (size - bounds[-2] + 5))   # suffix over two boundaries
want(bounds[1] + 9, size - 1, "bytes=%d-" % (bounds[1] + 9))                            # open-ended
want(bounds[0] - 2, bounds[0] + 2, None, {"If-Range": etag})                           # If-Range: still this file
st, hd, body = get({"Range": "bytes=%d-%d" % (bounds[0], bounds[0] + 9), "If-Range": '"derived:' + "0" * 64 + '"'})
if st != 200 or body != full: bad.append("If-Range with another ETag: %s" % st)
st, hd, body = get({"Range": "bytes=%d-" % size})
if st != 416 or hd["Content-Range"] != "bytes */%d" % size: bad.append("past the end: %s" % st)
st, hd, body = get({"If-None-Match": etag})
if st != 304 or body: bad.append("If-None-Match: %s" % st)
for b in bad: print(b)
sys.exit(1 if bad else 0)
EOF
STATUS=$(curl -sS -I -o "$HEADERS" -w '%{http_code}' "$BASE/v1/models/seg/versions/1/weights?$Q")
check "HEAD: 200 with the length and ETag" test "$STATUS|$(header Content-Length)|$(header ETag)" = "200|$(stat -c %s "$TEST_DIR/p1.h5")|$ET"

# --- another selection, other dtypes ----------------------------------------------
get_file "/v1/models/seg/versions/1/weights?exclude=enc,head" "$TEST_DIR/x.h5"
check "?exclude: float16 and a weightless layer, equal to the source" $CHECK legacy "$TEST_DIR/x.h5" "$SRC" mid,pool,tail
check "?exclude: another ETag" test "$(header ETag)" != "$ET"

# --- a .keras archive: the ranges lie inside the zip ------------------------------
KA=$KERAS/k3_3.11.3_mnist_cnn.keras
req POST /v1/models -d '{"name":"zip"}'
req POST /v1/models/zip/versions -H 'Content-Type: application/zip' --data-binary @"$KA"
expect_status 201 "upload a .keras archive"
req GET /v1/models/zip/versions/1/layers
ZL=$(printf '%s' "$BODY" | jq -r '[.items[]|select(.weights|length>0)|.name][0:2]|join(",")')
get_file "/v1/models/zip/versions/1/weights?layers=$ZL" "$TEST_DIR/z.weights.h5"
[ "$STATUS" = 200 ] && ok || bad ".keras partial: status $STATUS"
$PY -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("model.weights.h5"))' "$KA" "$TEST_DIR/zsrc.h5"
check ".keras partial ($ZL): equal to the archive's tensors" $CHECK keras3 "$TEST_DIR/z.weights.h5" "$TEST_DIR/zsrc.h5" "$ZL"
get_file "/v1/models/zip/versions/1/weights?layers=$ZL" "$TEST_DIR/z2.weights.h5"
check ".keras partial twice: same bytes" cmp -s "$TEST_DIR/z.weights.h5" "$TEST_DIR/z2.weights.h5"

# --- deletes and gc: never an answer from a missing blob ---------------------------
req POST /v1/models -d '{"name":"twin"}'
req POST /v1/models/twin/versions -H 'Content-Type: application/x-hdf5' --data-binary @"$SRC"
expect_status 201 "the same bytes in another model (one blob)"
get_file "/v1/models/twin/versions/1/weights?$Q" "$TEST_DIR/t1.h5"
check "same blob and selection in another model: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/t1.h5"
check "same blob and selection in another model: same ETag" test "$(header ETag)" = "$ET"
req DELETE "/v1/models/seg/versions/1?force=true"
expect_status 200 "delete the first version"
"$STRATA_BIN" gc --data "$DATA" --grace 0 >/dev/null 2>&1 && ok || bad "gc"
check "the blob another version holds is kept" test "$(find "$DATA/blobs" -type f | wc -l)" -ge 1
get_file "/v1/models/twin/versions/1/weights?$Q" "$TEST_DIR/t2.h5"
check "after delete + gc, the other version's partial set: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/t2.h5"
get_file "/v1/models/seg/versions/1/weights?$Q" "$TEST_DIR/gone"
[ "$STATUS" = 404 ] && ok || bad "deleted version: status $STATUS"
req DELETE "/v1/models/twin/versions/1?force=true"
"$STRATA_BIN" gc --data "$DATA" --grace 0 >/dev/null 2>&1 && ok || bad "gc"
check "no map outlives gc" test "$(find "$DATA/cache" -name '*.json' | wc -l)" -eq 0
req POST /v1/models/twin/versions -H 'Content-Type: application/x-hdf5' --data-binary @"$SRC"
expect_status 201 "upload again after gc"
get_file "/v1/models/twin/versions/2/weights?$Q" "$TEST_DIR/t3.h5"
check "re-uploaded: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/t3.h5"
check "re-uploaded: same ETag" test "$(header ETag)" = "$ET"

finish
