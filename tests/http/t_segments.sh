#!/usr/bin/env bash
# Hostile bytes in path segments and query values (issue #20, findings 1-3):
# a %00 must not cut a name short and act on another model; escapes that
# decode to invalid UTF-8 must give the contract's error envelope, never `{}`;
# and a Keras 3 operation node (x + 3.0) must be refused, not run as a layer
# (issue #21).
. "$(dirname "$0")/lib.sh"
start_server

req POST /v1/models -d '{"name":"victim"}'
expect_status 201 "create victim"
req POST /v1/models/victim/history -d '{"run":"r1","epoch":0,"metrics":{"loss":1.5}}'
expect_status 201 "history for victim"

# Finding 1: %00 in any segment is 400 and touches nothing.
req DELETE '/v1/models/victim%00xyz?force=true'
expect_error 400 bad_request "DELETE victim%00xyz"
req GET /v1/models/victim
expect_status 200 "victim still there after the %00 delete"
req DELETE '/v1/models/victim/tags/prod%00x'
expect_error 400 bad_request "tag with %00"
req GET '/v1/models/victim/versions/1%00'
expect_error 400 bad_request "ref with %00"
req GET '/v1/architectures/sha256%00'
expect_error 400 bad_request "architecture id with %00"
req GET '/v1/models/victim/history?run=r1%00x'
expect_error 400 bad_request "run with %00"
# Every route reads its captures through one check per kind (#14.1): the
# same 400 naming the kind, the details keyed by the capture.
for path in '/v1/models/victim%00/tags' '/v1/models/victim%00/runs' \
            '/v1/models/victim%00/versions/1/layers' '/v1/models/victim%00/versions/1/diff/2' \
            '/v1/models/victim%00/versions/1/compatibility?with=x'; do
    req GET "$path"
    expect_error 400 bad_request "model with %00: $path"
    expect_jq '.error.details.model' 'victim%00' "details name the model: $path"
done
req GET '/v1/models/victim/versions/1%00/layers'
expect_error 400 bad_request "ref with %00: layers"
expect_jq '.error.details.ref' '1%00' "details name the ref: layers"
req GET '/v1/models/victim/versions/1/diff/2%00'
expect_error 400 bad_request "other ref with %00: diff"
expect_jq '.error.details.other' '2%00' "details keyed by the capture: diff"
req GET '/v1/models/victim/versions/latest%00/weights'
expect_error 400 bad_request "ref with %00: weights"
expect_jq '.error.details.ref' 'latest%00' "details name the ref: weights"
req GET '/v1/models/victim/versions/1/compatibility?with=sha256%00'
expect_error 400 bad_request "compatibility with=%00"
req GET '/v1/models/victim/versions?run=r1%00'
expect_error 400 bad_request "version list run=%00"
req GET '/v1/models/victim/versions?tag=prod%00'
expect_error 400 bad_request "version list tag=%00"
req POST '/v1/models/victim%00/versions' -H 'Content-Type: application/x-hdf5' --data-binary 'x'
expect_error 400 bad_request "upload to victim%00"
req GET /v1/models/victim/runs
expect_jq '.items | length' 1 "victim's run untouched"

# Finding 2: invalid UTF-8 (lone byte, overlong '.', surrogate, past U+10FFFF)
# anywhere gives the envelope with a readable message.
for seg in '%ff' '%c0%ae%c0%ae' '%ed%a0%80' '%f4%90%80%80' 'a%80b'; do
    req GET "/v1/models/$seg"
    expect_error 400 bad_request "model segment $seg"
    expect_jq '.error.message | contains("'"${seg}"'")' true "message quotes $seg as written"
done
req GET '/v1/models/victim/tags/%ff'
expect_error 400 bad_request "tag %ff"
req GET '/v1/models/victim/history?run=%ff'
expect_error 400 bad_request "run=%ff"
req GET '/v1/models/victim/versions?order_by=metrics.%ff'
expect_error 400 bad_request "order_by=metrics.%ff"
req POST '/v1/architectures?name=%ff' --data-binary @"$STRATA_TESTS/data/arch/k2_sepconv_bn_gap/model.json"
expect_error 400 bad_request "architecture name=%ff"
# A valid multi-byte escape still decodes: the message quotes the character.
req GET '/v1/models/caf%C3%A9'
expect_error 400 bad_request "model café"
expect_jq '.error.message | contains("café")' true "valid UTF-8 decoded"
req GET /v1/models/victim
expect_status 200 "victim intact at the end"

# Issue #21: Keras 3 writes `x + 3.0` as an op node named Add; it must not run
# as a one-input Add layer (the identity).
req POST /v1/architectures --data-binary @"$STRATA_TESTS/data/arch/k3_opnode_add_const/model.json"
expect_error 422 invalid_architecture "op node x + 3.0"
expect_jq '.error.message | contains("operation node")' true "op node named as such"
expect_jq '[.. | strings | select(. == "add")] | length > 0' true "op node's layer named in the answer"

finish
