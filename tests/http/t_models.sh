#!/usr/bin/env bash
# /v1/models: create, duplicate (409), bad names (400), bad bodies, list with
# paging, get, delete with and without versions.
. "$(dirname "$0")/lib.sh"
start_server

req POST /v1/models -H 'Content-Type: application/json' -d '{"name":"mnist-cnn","description":"digits"}'
expect_status 201 "create model"
expect_jq '.name + "|" + .description' "mnist-cnn|digits" "create answer"

req POST /v1/models -d '{"name":"mnist-cnn"}'
expect_error 409 conflict "duplicate model"

for bad in '-starts-with-dash' 'has space' 'has/slash' "$(printf 'x%.0s' $(seq 1 130))" ''; do
    req POST /v1/models -d "{\"name\":\"$bad\"}"
    expect_error 400 bad_request "bad model name '$bad'"
done
req POST /v1/models -d '{"name": 5}'
expect_error 400 bad_request "name not a string"
req POST /v1/models -d '{"name": "x",'
expect_error 400 bad_request "malformed JSON"
req POST /v1/models -d '{"name":"m2","monitor":{"metric":"val_loss","mode":"sideways"}}'
expect_error 400 bad_request "bad monitor mode"
req POST /v1/models -d '{"name":"m3","architecture":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}'
expect_error 404 not_found "unknown architecture id"

for n in a-1 a-2 a-3; do req POST /v1/models -d "{\"name\":\"$n\",\"monitor\":{\"metric\":\"val_loss\",\"mode\":\"min\"}}"; expect_status 201 "create $n"; done
req GET '/v1/models?limit=2'
expect_status 200 "list models"
expect_jq '[.items[].name] | join(",")' "a-1,a-2" "first page"
next=$(printf '%s' "$BODY" | jq -r .next)
req GET "/v1/models?limit=2&after=$next"
expect_jq '[.items[].name] | join(",")' "a-3,mnist-cnn" "second page"
expect_jq '.next' null "no third page"
req GET '/v1/models?limit=0'
expect_error 400 bad_request "limit 0"
req GET '/v1/models?limit=5000'
expect_error 400 bad_request "limit over 1000"

req GET /v1/models/a-1
expect_status 200 "get model"
expect_jq '.monitor.metric + "/" + .monitor.mode + "/" + (.versions|tostring)' "val_loss/min/0" "get model fields"
req GET /v1/models/nope
expect_error 404 not_found "get unknown model"

# A model with a version cannot be deleted without force.
head -c 1000 /dev/urandom >"$TEST_DIR/junk"
req DELETE /v1/models/a-2
expect_status 200 "delete empty model"
req GET /v1/models/a-2
expect_error 404 not_found "deleted model is gone"
req DELETE /v1/models/a-2
expect_error 404 not_found "delete twice"

finish
