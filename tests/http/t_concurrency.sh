#!/usr/bin/env bash
# Parallel uploads to one model get versions 1..N exactly; racing CAS tag
# moves: exactly one wins; no SQLITE_BUSY or 5xx reaches a client.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server --threads 8
req POST /v1/models -d '{"name":"race"}'
N=16
pids=()
files=("$KERAS"/k2_2.1.2_weights_mnist_cnn.h5 "$KERAS"/tfk_2.15.0_weights_lenet.h5 "$KERAS"/k2_2.0.0_weights_conv2d_dropout.h5 "$KERAS"/k1_1.1.2_weights_cnn_tf.h5)
for i in $(seq 1 $N); do
    f=${files[$((i % 4))]}
    curl -sS -o "$TEST_DIR/up$i.json" -w '%{http_code}\n' -X POST "$BASE/v1/models/race/versions?epoch=$i" \
        -H 'Content-Type: application/x-hdf5' -T "$f" >"$TEST_DIR/up$i.code" &
    pids+=($!)
done
wait "${pids[@]}"   # not a bare wait: the server is a background job too
codes=$(cat "$TEST_DIR"/up*.code | sort | uniq -c | tr -s ' ')
check "all $N parallel uploads answered 201 ($codes)" test "$(grep -c 201 "$TEST_DIR"/up*.code | awk -F: '{s+=$2} END {print s}')" -eq $N
nums=$(jq -s 'map(.version) | sort | map(tostring) | join(",")' "$TEST_DIR"/up*.json)
check "versions are exactly 1..$N ($nums)" test "$nums" = "\"$(seq -s, 1 $N)\""

req PUT /v1/models/race/tags/prod -d '{"version":1}'
tpids=()
for i in $(seq 2 11); do
    curl -sS -o /dev/null -w '%{http_code}\n' -X PUT "$BASE/v1/models/race/tags/prod" \
        -d "{\"version\":$i,\"expected_version\":1}" >"$TEST_DIR/tag$i.code" &
    tpids+=($!)
done
wait "${tpids[@]}"
wins=$(cat "$TEST_DIR"/tag*.code | grep -c 200)
losses=$(cat "$TEST_DIR"/tag*.code | grep -c 409)
check "exactly one racing CAS move wins ($wins won, $losses got 409)" test "$wins" -eq 1 -a "$losses" -eq 9
req GET /v1/models/race/tags/prod/history
expect_jq '.items|length' 2 "history has the create and the one move"
# The text access log is "TIME LEVEL METHOD PATH STATUS BYTES ...": field 5 is the status.
check "no 5xx in the access log" test -z "$(awk '$5 ~ /^5[0-9][0-9]$/' "$TEST_DIR/server.log")"
finish
