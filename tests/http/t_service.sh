#!/usr/bin/env bash
# /healthz, /metrics, unknown paths (404), wrong methods (405), request ids.
. "$(dirname "$0")/lib.sh"
start_server

req GET /healthz
expect_status 200 "healthz"
expect_jq '.status' ok "healthz body"
check "X-Request-Id header present" grep -qi '^X-Request-Id: [0-9a-f]' "$HEADERS"

req GET /v1/nothing-here
expect_error 404 not_found "unknown path"

req PATCH /v1/models
expect_error 405 method_not_allowed "PATCH on /v1/models"

req DELETE /healthz
expect_error 405 method_not_allowed "DELETE on /healthz"

req GET /metrics
expect_status 200 "metrics"
check "metrics counts requests" grep -q '^strata_requests_started_total [0-9]' <<<"$BODY"
check "metrics counts 4xx answers" grep -q '^strata_responses_total{class="4xx"} 3$' <<<"$BODY"
check "metrics has blob gauge" grep -q '^strata_blobs 0$' <<<"$BODY"

curl -sS -o "$TEST_DIR/openapi.yaml" "$BASE/openapi.yaml"
check "GET /openapi.yaml serves docs/openapi.yaml" cmp -s "$TEST_DIR/openapi.yaml" "$STRATA_TESTS/../docs/openapi.yaml"

finish
