#!/usr/bin/env bash
# Uploads every real Keras fixture (raw body and multipart) to a model without
# an architecture, then fetches each back byte for byte by number, by tag and
# by `latest`, with ETag, Range (206/416), If-None-Match (304) and
# Content-Disposition. Identical bytes are stored once.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server

req POST /v1/models -d '{"name":"zoo"}'
expect_status 201 "create model"

n=0
for f in "$KERAS"/*.h5 "$KERAS"/*.keras; do
    base=$(basename "$f")
    n=$((n + 1))
    want=$(sha256sum "$f" | cut -d' ' -f1)
    if [ $((n % 2)) -eq 0 ]; then
        req POST "/v1/models/zoo/versions?epoch=$n&run=r1&tag=t$n&metrics=%7B%22loss%22%3A$n.5%7D" \
            -H 'Content-Type: application/x-hdf5' -T "$f"
    else
        req POST /v1/models/zoo/versions -F "weights=@$f" -F "metadata={\"epoch\":$n,\"run\":\"r1\",\"tags\":[\"t$n\"],\"metrics\":{\"loss\":$n.5},\"notes\":\"$base\"}"
    fi
    expect_status 201 "upload $base"
    expect_jq '.version' "$n" "$base gets version $n"
    expect_jq '.digest' "sha256:$want" "$base digest"
    expect_jq '.size' "$(stat -c %s "$f")" "$base size"
    expect_jq '.epoch|tostring' "$n" "$base epoch"
    expect_jq '.metrics.loss|tostring' "$n.5" "$base metrics"
    expect_jq '.tags | index("t'$n'") != null' true "$base tag"
    expect_jq '(.layers | length > 0) and (.format | test("^keras[23]-"))' true "$base layers and format"

    curl -sS -o "$TEST_DIR/back" "$BASE/v1/models/zoo/versions/$n/weights"
    check "$base fetched by number is byte-identical" cmp -s "$f" "$TEST_DIR/back"
    curl -sS -o "$TEST_DIR/back" "$BASE/v1/models/zoo/versions/t$n/weights"
    check "$base fetched by tag is byte-identical" cmp -s "$f" "$TEST_DIR/back"
done

req GET /v1/models/zoo/versions/latest
expect_jq '.version' "$n" "latest is the highest version"

# Format per file, as SOURCES.md describes them.
req GET '/v1/models/zoo/versions?limit=1000&order_by=version&order=asc'
expect_jq '[.items[] | select(.notes != null) | .version % 2] | unique | join(",")' 1 "notes set by the multipart uploads only"
i=0
for f in "$KERAS"/*.h5 "$KERAS"/*.keras; do
    i=$((i + 1)); base=$(basename "$f")
    case "$base" in
        *.keras) want=keras3-archive ;;
        *.weights.h5) want=keras3-weights ;;
        *_full_*|*legacy_full*) want=keras2-model ;;
        *) want=keras2-weights ;;
    esac
    expect_jq ".items[$((i - 1))].format" "$want" "format of $base"
done

# Download headers, conditional and ranged requests on the mnist fixture.
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
req POST '/v1/models/zoo/versions?tag=prod' -H 'Content-Type: application/octet-stream' -T "$mnist"
expect_status 201 "re-upload identical bytes"
v=$(printf '%s' "$BODY" | jq -r .version)
dg=$(printf '%s' "$BODY" | jq -r .digest)
check "identical bytes stored once" test "$(find "$DATA/blobs" -type f | wc -l)" -eq "$n"

req GET /v1/models/zoo/versions/prod/weights -o /dev/null
expect_status 200 "fetch by tag"
expect_header ETag "\"$dg\"" "ETag is the digest"
expect_header Accept-Ranges bytes "Accept-Ranges"
expect_header Content-Disposition "attachment; filename=\"zoo-v$v.h5\"" "Content-Disposition"
expect_header Content-Type application/x-hdf5 "Content-Type"
expect_header Content-Length "$(stat -c %s "$mnist")" "Content-Length"

req GET /v1/models/zoo/versions/prod/weights -H "If-None-Match: \"$dg\"" -o /dev/null
expect_status 304 "If-None-Match"

curl -sS -D "$HEADERS" -o "$TEST_DIR/part" -H 'Range: bytes=100-1123' "$BASE/v1/models/zoo/versions/prod/weights"
check "Range 100-1123 is 206" grep -q '^HTTP/1.1 206' "$HEADERS"
expect_header Content-Range "bytes 100-1123/$(stat -c %s "$mnist")" "Content-Range"
check "Range body is the right bytes" cmp -s "$TEST_DIR/part" <(tail -c +101 "$mnist" | head -c 1024)
curl -sS -D "$HEADERS" -o "$TEST_DIR/part" -H 'Range: bytes=-16' "$BASE/v1/models/zoo/versions/prod/weights"
check "suffix range is the last 16 bytes" cmp -s "$TEST_DIR/part" <(tail -c 16 "$mnist")
req GET /v1/models/zoo/versions/prod/weights -H 'Range: bytes=999999999-'
expect_error 416 range_not_satisfiable "Range past the end"
expect_header Content-Range "bytes */$(stat -c %s "$mnist")" "416 Content-Range"

# 404s of the contract
req GET /v1/models/zoo/versions/999/weights
expect_error 404 not_found "unknown version number"
req GET /v1/models/zoo/versions/no-such-tag
expect_error 404 not_found "unknown tag"
req GET /v1/models/nope/versions/1
expect_error 404 not_found "unknown model"

finish
