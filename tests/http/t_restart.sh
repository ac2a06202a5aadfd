#!/usr/bin/env bash
# Restart on the same data directory keeps models, versions, tags and bytes;
# stale temp files are removed at start-up; `strata verify` is clean; gc
# keeps referenced blobs and frees unreferenced ones.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
lenet=$KERAS/tfk_2.15.0_weights_lenet.h5
req POST /v1/models -d '{"name":"keep"}'
req POST '/v1/models/keep/versions?tag=prod&epoch=3' -H 'Content-Type: application/x-hdf5' -T "$mnist"
expect_status 201 "upload"
req POST '/v1/models/keep/versions' -H 'Content-Type: application/x-hdf5' -T "$lenet"
expect_status 201 "upload 2"
stop_server

echo stale >"$DATA/tmp/upload-stale"
start_server
check "stale temp file removed at start-up" test ! -e "$DATA/tmp/upload-stale"
req GET /v1/models/keep/versions/prod
expect_status 200 "version survives restart"
expect_jq '.epoch' 3 "metadata survives restart"
curl -sS -o "$TEST_DIR/back" "$BASE/v1/models/keep/versions/prod/weights"
check "bytes survive restart" cmp -s "$mnist" "$TEST_DIR/back"
req DELETE /v1/models/keep/versions/2
expect_status 200 "delete version 2"
stop_server

out=$("$STRATA_BIN" verify --data "$DATA"); rc=$?
check "verify is clean ($out)" test "$rc" -eq 0
out=$("$STRATA_BIN" gc --data "$DATA" --dry-run --grace 0)
check "gc dry-run reports the unreferenced blob ($out)" grep -q 'would free 1 file' <<<"$out"
check "dry run removed nothing" test "$(find "$DATA/blobs" -type f | wc -l)" -eq 2
out=$("$STRATA_BIN" gc --data "$DATA")
check "gc within the grace period keeps it ($out)" grep -q 'freed 0 file' <<<"$out"
out=$("$STRATA_BIN" gc --data "$DATA" --grace 0)
check "gc frees it ($out)" grep -q "freed 1 file(s), $(stat -c %s "$lenet") bytes" <<<"$out"
check "the referenced blob stays" test "$(find "$DATA/blobs" -type f | wc -l)" -eq 1
out=$("$STRATA_BIN" verify --data "$DATA"); rc=$?
check "verify still clean after gc ($out)" test "$rc" -eq 0

# Corrupt the blob: verify must notice.
blob=$(find "$DATA/blobs" -type f | head -1)
chmod u+w "$blob"; printf 'X' | dd of="$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
out=$("$STRATA_BIN" verify --data "$DATA"); rc=$?
check "verify fails on a corrupted blob" test "$rc" -ne 0
check "verify names the problem" grep -qi 'problem' <<<"$out"

finish
