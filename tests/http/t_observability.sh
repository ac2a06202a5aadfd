#!/usr/bin/env bash
# /metrics counts a known sequence of requests exactly (by route and status,
# latency histogram, uploads refused by reason, versions per model); the
# access log has one line per request with method, path, status, bytes,
# duration and the request id the client saw in X-Request-Id; --log-format json.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server --log-format json
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5

req POST /v1/models -d '{"name":"obs"}'                       # models.create 201
req POST /v1/models -d '{"name":"obs"}'                       # models.create 409
for i in 1 2 3; do req GET /v1/models/obs; done                # models.get 200 x3
req GET /v1/models/none                                        # models.get 404
req POST /v1/models/obs/versions -H 'Content-Type: application/x-hdf5' -T "$mnist"     # upload 201
req POST /v1/models/obs/versions -H 'Content-Type: text/plain' -T "$mnist"             # upload 415
printf 'junk' >"$TEST_DIR/junk.h5"
req POST /v1/models/obs/versions -H 'Content-Type: application/x-hdf5' -T "$TEST_DIR/junk.h5"  # upload 422
req GET /v1/models/obs/versions/1/weights -o /dev/null         # weights 200
rid=$(grep -i '^X-Request-Id:' "$HEADERS" | cut -d' ' -f2 | tr -d '\r')
req GET /no/such/path                                          # unmatched 404

req GET /metrics
M=$BODY
metric() { grep -v '^#' <<<"$M" | grep -F "$1" | awk '{print $NF}'; }
check "models.create 201 counted once" test "$(metric 'strata_requests_total{route="models.create",method="POST",status="201"}')" = 1
check "models.create 409 counted once" test "$(metric 'strata_requests_total{route="models.create",method="POST",status="409"}')" = 1
check "models.get 200 counted 3 times" test "$(metric 'strata_requests_total{route="models.get",method="GET",status="200"}')" = 3
check "models.get 404 counted once" test "$(metric 'strata_requests_total{route="models.get",method="GET",status="404"}')" = 1
check "unmatched 404 counted" test "$(metric 'strata_requests_total{route="unmatched",method="any",status="404"}')" = 1
check "histogram count for models.get is 4" test "$(metric 'strata_request_duration_seconds_count{route="models.get",method="GET"}')" = 4
check "histogram +Inf bucket equals count" test "$(metric 'strata_request_duration_seconds_bucket{route="models.get",method="GET",le="+Inf"}')" = 4
check "uploads accepted 1" test "$(metric 'strata_uploads_total{result="accepted"}')" = 1
check "uploads rejected 2" test "$(metric 'strata_uploads_total{result="rejected"}')" = 2
check "refused by reason: unsupported_media_type" test "$(metric 'strata_uploads_rejected_total{reason="unsupported_media_type"}')" = 1
check "refused by reason: invalid_weights" test "$(metric 'strata_uploads_rejected_total{reason="invalid_weights"}')" = 1
check "versions per model" test "$(metric 'strata_model_versions{model="obs"}')" = 1
check "blob count" test "$(metric 'strata_blobs ')" = 1
check "blob bytes" test "$(metric 'strata_blob_bytes ')" = "$(stat -c %s "$mnist")"
out=$(metric 'strata_bytes_out_total ')
check "bytes out counts the download ($out)" test "${out:-0}" -ge "$(stat -c %s "$mnist")"

stop_server
log=$TEST_DIR/server.log
lines=$(grep -c '"request_id"' "$log")
check "one access-log line per request ($lines)" test "$lines" -eq 12
check "every access-log line is JSON" bash -c "grep '\"request_id\"' '$log' | jq -e . >/dev/null"
line=$(grep "\"request_id\":\"$rid\"" "$log")
check "the download's line carries its X-Request-Id ($rid)" test -n "$line"
check "and its method, path, status, bytes, duration" bash -c "jq -e '.method == \"GET\" and .path == \"/v1/models/obs/versions/1/weights\" and .status == 200 and .bytes == $(stat -c %s "$mnist") and (.ms | type == \"number\")' <<<'$line' >/dev/null"
finish
