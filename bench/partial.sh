#!/usr/bin/env bash
# bench/partial.sh — cost of a partial layer set from a 512 MiB checkpoint
# (not in CI). A Keras 2 save_weights file with four 128 MiB Dense kernels is
# generated with h5py and uploaded (model without architecture); then
#   reference: reading the chosen tensors' bytes (dd at their offsets),
#   first:     GET …/weights?layers=big_1,big_3 with cache/ emptied (sandboxed
#              summary, the skeleton laid out by libhdf5, then the skeleton
#              and the blob's ranges sent; no tensor byte copied or hashed),
#   cached:    the same request again (skeleton + blob ranges, nothing derived),
#   whole:     the plain whole-file download, for scale.
# Then the answer is checked: the same bytes cached and rebuilt, and h5py
# reads the source's tensors from it.
# Prints each time and the ratio first/reference (goal: <= 1.5).
# Usage: STRATA_BIN=build-xfer/strata bash bench/partial.sh
set -eu
STRATA_BIN=${STRATA_BIN:-$(dirname "$0")/../build/strata}
PY=/usr/bin/python3
DIR=$(mktemp -d /tmp/strata-bench.XXXXXX)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT

$PY - "$DIR/big.h5" <<'EOF'
import sys, h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File(sys.argv[1], "w") as f:
    names = ["big_0", "big_1", "big_2", "big_3"]
    f.attrs["backend"] = b"tensorflow"; f.attrs["keras_version"] = b"2.15.0"
    f.attrs["layer_names"] = np.array([n.encode() for n in names])
    for n in names:
        g = f.create_group(n)
        wn = [(n + "/kernel:0").encode(), (n + "/bias:0").encode()]
        g.attrs["weight_names"] = np.array(wn)
        g.create_dataset(wn[0].decode(), data=rng.standard_normal((8192, 4096), dtype=np.float32))
        g.create_dataset(wn[1].decode(), data=np.zeros(4096, np.float32))
EOF
# offsets of the chosen tensors, for the reference read
$PY - "$DIR/big.h5" >"$DIR/ranges" <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for n in ("big_1", "big_3"):
    for w in f[n].attrs["weight_names"]:
        d = f[n][w.decode()]
        print(d.id.get_offset(), d.id.get_storage_size())
EOF

"$STRATA_BIN" serve --listen 127.0.0.1:0 --data "$DIR/data" >"$DIR/out" 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do grep -q 'listening on' "$DIR/out" 2>/dev/null && break; sleep 0.05; done
BASE=$(sed -n 's/.*listening on \(http:[^,]*\),.*/\1/p' "$DIR/out")
curl -sS -o /dev/null -X POST "$BASE/v1/models" -d '{"name":"big"}'
curl -sS -o /dev/null -X POST "$BASE/v1/models/big/versions" -H 'Content-Type: application/x-hdf5' --data-binary @"$DIR/big.h5"
BLOB=$(find "$DIR/data/blobs" -type f | head -1)
cat "$BLOB" >/dev/null   # warm: every timing below reads from the page cache

now() { date +%s.%N; }
# Three rounds (the machine is shared: medians). Bodies go to /dev/null as
# dd's do; the bytes are checked after the timing.
URL="$BASE/v1/models/big/versions/1/weights?layers=big_1,big_3"
: >"$DIR/times"
for round in 1 2 3; do
    rm -rf "$DIR/data/cache"/*           # what `strata gc` does: the next request derives again
    t0=$(now)
    while read -r off n; do
        dd if="$BLOB" of=/dev/null bs=4M iflag=skip_bytes,count_bytes skip="$off" count="$n" status=none
    done <"$DIR/ranges"
    t1=$(now)
    curl -sS -o /dev/null "$URL"
    t2=$(now)
    curl -sS -o /dev/null "$URL"
    t3=$(now)
    curl -sS -o /dev/null "$BASE/v1/models/big/versions/1/weights"
    t4=$(now)
    echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1" | bc) $(echo "$t3 - $t2" | bc) $(echo "$t4 - $t3" | bc)" >>"$DIR/times"
done
curl -sS -o "$DIR/p.h5" "$URL"
rm -rf "$DIR/data/cache"/*
curl -sS -o "$DIR/p2.h5" "$URL"
cmp -s "$DIR/p.h5" "$DIR/p2.h5" || { echo "cached and rebuilt answers differ" >&2; exit 1; }
$PY - "$DIR/p.h5" "$DIR/big.h5" <<'EOF' || { echo "the partial file does not hold the source's tensors" >&2; exit 1; }
import sys, h5py, numpy as np
p, s = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert [n.decode() for n in p.attrs["layer_names"]] == ["big_1", "big_3"]
for n in ("big_1", "big_3"):
    for w in s[n].attrs["weight_names"]:
        assert np.array_equal(p[n][w.decode()][()], s[n][w.decode()][()]), (n, w)
EOF
chosen=$(awk '{s+=$2} END {print s}' "$DIR/ranges")
med() { sort -n | sed -n 2p; }
r=$(cut -d' ' -f1 "$DIR/times" | med); f=$(cut -d' ' -f2 "$DIR/times" | med)
c=$(cut -d' ' -f3 "$DIR/times" | med); w=$(cut -d' ' -f4 "$DIR/times" | med)
awk -v r="$r" -v f="$f" -v c="$c" -v w="$w" -v b="$chosen" -v p="$(stat -c %s "$DIR/p.h5")" 'BEGIN {
    printf "chosen bytes %d MiB, partial file %d MiB (medians of 3 rounds; bodies to /dev/null)\n", b / 1048576, p / 1048576;
    printf "reference read (dd of the chosen bytes): %.3f s\n", r;
    printf "first request (summary + skeleton + send): %.3f s\n", f;
    printf "cached request:                           %.3f s  (%.0f MiB/s)\n", c, p / 1048576 / c;
    printf "whole-file download (512 MiB):            %.3f s  (%.0f MiB/s)\n", w, 512 / w;
    printf "ratio first/reference: %.2f   ratio cached/reference: %.2f\n", f / r, c / r;
    # the same number of bytes as a plain download from this server: what any
    # HTTP answer of that size costs here (loopback + curl), the nearest
    # honest reference for a request that must send the chosen bytes
    printf "ratio first/(plain download of as many bytes): %.2f\n", f / (w * p / (512 * 1048576)) }'
