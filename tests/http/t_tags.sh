#!/usr/bin/env bash
# Tags: create/move, compare-and-set (expected_version and If-Match), the
# built-in `latest`, all-digit names, history, delete; version delete while
# tagged (409) and with force.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
lenet=$KERAS/tfk_2.15.0_weights_lenet.h5

req POST /v1/models -d '{"name":"m"}'
for f in "$mnist" "$lenet" "$mnist"; do
    req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -T "$f"
    expect_status 201 "upload $(basename "$f")"
done

req PUT /v1/models/m/tags/prod -d '{"version":1}'
expect_status 200 "create prod"
expect_jq '.tag + "@" + (.version|tostring)' "prod@1" "prod answer"
# Version answers are kept as text until a write (server/cache.c): read
# them twice, then every kind of write must show in the next answer.
for i in 1 2; do
    req GET /v1/models/m/versions/prod
    expect_jq '"\(.version) \(.tags | join(","))"' "1 prod" "by tag, read $i"
    req GET /v1/models/m/versions/2
    expect_jq '.tags | join(",")' "" "version 2 untagged, read $i"
done
req PUT /v1/models/m/tags/prod -d '{"version":2,"expected_version":1}'
expect_status 200 "CAS move 1->2"
req GET /v1/models/m/versions/prod
expect_jq '.version' 2 "a moved tag shows at once"
req GET /v1/models/m/versions/2
expect_jq '.tags | join(",")' "prod" "the new holder lists the tag"
req GET /v1/models/m/versions/1
expect_jq '.tags | join(",")' "" "the old holder no longer does"
req PUT /v1/models/m/tags/prod -d '{"version":3,"expected_version":1}'
expect_error 409 conflict "stale CAS"
expect_jq '.error.details.current_version' 2 "stale CAS names the current version"
req PUT /v1/models/m/tags/prod -d '{"version":3}' -H 'If-Match: "1"'
expect_error 409 conflict "stale If-Match"
req PUT /v1/models/m/tags/prod -d '{"version":3}' -H 'If-Match: "2"'
expect_status 200 "If-Match move 2->3"
req PUT /v1/models/m/tags/staging -d '{"version":1,"expected_version":null}'
expect_status 200 "create-only when absent"
req PUT /v1/models/m/tags/staging -d '{"version":2,"expected_version":null}'
expect_error 409 conflict "create-only when present"
expect_jq '.error.details.current_version' 1 "create-only conflict names the version"

req PUT /v1/models/m/tags/latest -d '{"version":1}'
expect_error 400 bad_request "latest is reserved"
req PUT /v1/models/m/tags/12345 -d '{"version":1}'
expect_error 400 bad_request "all-digit tag"
req PUT /v1/models/m/tags/prod -d '{"version":99}'
expect_error 404 not_found "tag to an unknown version"
req PUT /v1/models/m/tags/prod -d '{"version":"two"}'
expect_error 400 bad_request "version not a number"
req PUT /v1/models/nope/tags/prod -d '{"version":1}'
expect_error 404 not_found "tag on unknown model"

req GET /v1/models/m/tags
expect_status 200 "list tags"
expect_jq '[.items[] | "\(.tag)=\(.version)"] | sort | join(",")' "latest=3,prod=3,staging=1" "tag list"
req GET /v1/models/m/tags/prod
expect_jq '.version' 3 "get one tag"
req GET /v1/models/m/tags/prod/history
expect_status 200 "tag history"
expect_jq '[.items[] | "\(.from_version)>\(.to_version)"] | join(",")' "null>1,1>2,2>3" "history of moves"
req GET /v1/models/m/tags/never/history
expect_error 404 not_found "history of a tag that never existed"

req GET /v1/models/m/versions/prod
expect_jq '.version' 3 "ref by tag"
req GET /v1/models/m/versions/2
expect_jq '.digest' "sha256:$(sha256sum "$lenet" | cut -d' ' -f1)" "ref by number"

req DELETE /v1/models/m/versions/1
expect_error 409 conflict "delete a tagged version"
req DELETE /v1/models/m/versions/1?force=true
expect_status 200 "force delete a tagged version"
req GET /v1/models/m/versions/1
expect_error 404 not_found "a deleted version is gone at once"
req GET /v1/models/m/tags/staging
expect_error 404 not_found "its tag went with it"
req DELETE /v1/models/m/versions/prod
expect_error 400 bad_request "delete takes a number"

req DELETE /v1/models/m/tags/prod
expect_status 200 "delete tag"
req DELETE /v1/models/m/tags/prod
expect_error 404 not_found "delete tag twice"
req GET /v1/models/m/tags/prod/history
expect_jq '.items[-1].to_version' null "deletion recorded in history"

# Version numbers are never reused.
req DELETE /v1/models/m/versions/3
expect_status 200 "delete the highest version"
req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -T "$lenet"
expect_jq '.version' 4 "numbers are not reused"
req GET /v1/models/m/versions/latest
expect_jq '.version' 4 "latest follows"

req DELETE /v1/models/m
expect_error 409 conflict "delete a model with versions"
req DELETE '/v1/models/m?force=true'
expect_status 200 "force delete a model"

finish
