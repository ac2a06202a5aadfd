#!/usr/bin/env bash
# Every refused upload answers the contract's JSON error and leaves nothing:
# no version, no tag move, no blob, no temp file.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server --max-body 2M
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
big=$KERAS/k1_1.0.4_weights_cifar10_cnn_th.h5     # 3.4 MiB > --max-body 2M

req POST /v1/models -d '{"name":"m"}'
expect_status 201 "create model"
req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: application/x-hdf5' -T "$mnist"
expect_status 201 "first upload"
before=$(data_state)

nothing_changed() {
    req GET /v1/models/m
    expect_jq '.versions' 1 "$1: still one version"
    expect_jq '.tags.prod' 1 "$1: prod unmoved"
    check "$1: no blob or temp file left ($(data_state))" test "$(data_state)" = "$before"
}

req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: text/plain' --data-binary @"$mnist"
expect_error 415 unsupported_media_type "text/plain body"
nothing_changed "415"

req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: application/x-hdf5' -T "$big"
expect_error 413 too_large "body over --max-body"
nothing_changed "413"

# 411: no Content-Length and no chunked encoding (raw HTTP).
resp=$(printf 'POST /v1/models/m/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-hdf5\r\nConnection: close\r\n\r\n' |
       timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/${BASE##*:}; cat >&3; cat <&3")
check "411 without a length" grep -q '^HTTP/1.1 411' <<<"$resp"
check "411 body is the contract's error" grep -q '"code":"length_required"' <<<"$resp"

# Chunked and Content-Length together.
req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -H 'Transfer-Encoding: chunked' -H 'Content-Length: 10' --data-binary @"$mnist"
check "chunked + Content-Length refused (status $STATUS)" test "$STATUS" = 400
nothing_changed "chunked+length"

zero=0000000000000000000000000000000000000000000000000000000000000000
req POST "/v1/models/m/versions?tag=prod&digest=sha256:$zero" -H 'Content-Type: application/x-hdf5' -T "$mnist"
expect_error 400 digest_mismatch "declared digest mismatch (query)"
nothing_changed "digest mismatch"
req POST "/v1/models/m/versions?tag=prod" -H 'Content-Type: application/x-hdf5' \
    -H "Content-Digest: sha-256=:$(printf '%s' $zero | xxd -r -p | base64):" -T "$mnist"
expect_error 400 digest_mismatch "declared digest mismatch (Content-Digest)"
good=$(sha256sum "$mnist" | cut -d' ' -f1)
req POST "/v1/models/m/versions?digest=sha256:$good" -H 'Content-Type: application/x-hdf5' \
    -H "Content-Digest: sha-256=:$(printf '%s' $good | xxd -r -p | base64):" -T "$mnist"
expect_status 201 "matching declared digest accepted"
req DELETE /v1/models/m/versions/2
expect_status 200 "delete that version again"

printf 'this is not HDF5 at all' >"$TEST_DIR/text.h5"
req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: application/x-hdf5' -T "$TEST_DIR/text.h5"
expect_error 422 invalid_weights "not an HDF5 file"
nothing_changed "not HDF5"

head -c 20000 "$mnist" >"$TEST_DIR/trunc.h5"
req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: application/x-hdf5' -T "$TEST_DIR/trunc.h5"
expect_error 422 invalid_weights "truncated HDF5"
nothing_changed "truncated"

req POST '/v1/models/m/versions?tag=prod' -H 'Content-Type: application/x-hdf5' --data-binary ''
expect_status 400 "empty body"
nothing_changed "empty body"

for q in 'epoch=-1' 'epoch=abc' 'run=bad%20run' 'tag=123' 'tag=latest' 'metrics=%7Bnope' 'metrics=%7B%22a%22%3A%22x%22%7D' 'metrics=%7B%22a%2Cb%22%3A1%7D' 'parent=nope'; do
    req POST "/v1/models/m/versions?$q" -H 'Content-Type: application/x-hdf5' -T "$mnist"
    expect_error 400 bad_request "bad metadata $q"
done
nothing_changed "bad metadata"

req POST /v1/models/m/versions -F "weights=@$mnist" -F 'metadata={"epoch":"five"}'
expect_error 400 bad_request "multipart bad metadata"
req POST /v1/models/m/versions -F "other=@$mnist"
expect_error 400 bad_request "multipart without weights"
req POST /v1/models/m/versions -F "weights=@$mnist" -F 'metadata=[1,2]'
expect_error 400 bad_request "multipart metadata not an object"
nothing_changed "multipart errors"

req POST /v1/models/nope/versions -H 'Content-Type: application/x-hdf5' -T "$mnist"
expect_error 404 not_found "upload to unknown model"

finish
