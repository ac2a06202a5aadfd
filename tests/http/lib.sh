# tests/http/lib.sh — the harness of strata's HTTP tests (sourced, not run).
#
# Each test script starts the real `strata serve` on a free port with a fresh
# data directory, drives it with curl, checks answers with jq, and ends with
# `finish`, which stops the server (its exit status must be 0: under ASan a
# leak or error makes it non-zero) and prints "N passed, N failed".
#
# Environment (set by ctest): STRATA_BIN, STRATA_FIXTURES, STRATA_TESTS.

set -u
STRATA_BIN=${STRATA_BIN:-$(dirname "$0")/../../build/strata}
STRATA_TESTS=${STRATA_TESTS:-$(cd "$(dirname "$0")/.." && pwd)}
STRATA_FIXTURES=${STRATA_FIXTURES:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/fixtures}
KERAS=$STRATA_FIXTURES/keras
PASS=0
FAIL=0
SERVER_PID=
TEST_DIR=$(mktemp -d /tmp/strata-test.XXXXXX)
DATA=$TEST_DIR/data
BASE=
STATUS=
BODY=
HEADERS=$TEST_DIR/headers
CURL_AUTH=()

ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }

# have_fixtures: 0 when ../shared/fixtures is there; otherwise says so loudly.
have_fixtures() {
    if [ -f "$KERAS/SOURCES.md" ]; then return 0; fi
    echo "SKIPPED (loudly): Keras fixtures not found at $KERAS — the tests that need them did not run" >&2
    return 1
}

# start_server [extra serve args...]: starts on a free port, sets BASE.
start_server() {
    local log=$TEST_DIR/server.log
    : >"$TEST_DIR/server.out"     # a restart must not read the old port
    "$STRATA_BIN" serve --listen 127.0.0.1:0 --data "$DATA" --threads 4 "$@" >"$TEST_DIR/server.out" 2>>"$log" &
    SERVER_PID=$!
    local i
    for i in $(seq 1 200); do
        if grep -q 'listening on' "$TEST_DIR/server.out" 2>/dev/null; then break; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    BASE=$(sed -n 's/.*listening on \(http:[^,]*\),.*/\1/p' "$TEST_DIR/server.out")
    if [ -z "$BASE" ]; then
        echo "server did not start:" >&2; cat "$TEST_DIR/server.out" "$log" >&2
        exit 1
    fi
}

# stop_server: SIGTERM, wait, the exit status must be 0 (sanitizers report here).
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    if [ "$rc" -eq 0 ]; then ok; else bad "server exited with status $rc (see log below)"; tail -50 "$TEST_DIR/server.log" >&2; fi
}

# req METHOD PATH [curl args...]: sets STATUS, BODY; headers in $HEADERS.
req() {
    local method=$1 path=$2; shift 2
    BODY=$(curl -sS -X "$method" -D "$HEADERS" -w '\n%{http_code}' ${CURL_AUTH[@]+"${CURL_AUTH[@]}"} "$@" "$BASE$path" 2>"$TEST_DIR/curl.err")
    STATUS=${BODY##*$'\n'}
    BODY=${BODY%$'\n'*}
}

# expect_status CODE what
expect_status() {
    if [ "$STATUS" = "$1" ]; then ok; else bad "$2: status $STATUS, expected $1; body: ${BODY:0:400}"; fi
}

# expect_jq FILTER EXPECTED what — compares jq -r output with EXPECTED.
expect_jq() {
    local got
    got=$(printf '%s' "$BODY" | jq -r "$1" 2>&1)
    if [ "$got" = "$2" ]; then ok; else bad "$3: jq '$1' gave '$got', expected '$2'; body: ${BODY:0:400}"; fi
}

# expect_error STATUS CODE what — the contract's error shape with a message.
expect_error() {
    expect_status "$1" "$3"
    expect_jq '.error.code' "$2" "$3 (error code)"
    expect_jq '(.error.message | length > 10) and (.error.details | type == "object")' true "$3 (message, details)"
}

# expect_header NAME VALUE what — exact header value (case-insensitive name).
expect_header() {
    local got
    got=$(grep -i "^$1:" "$HEADERS" | head -1 | cut -d' ' -f2- | tr -d '\r')
    if [ "$got" = "$2" ]; then ok; else bad "$3: header $1 is '$got', expected '$2'"; fi
}

# check CONDITION-COMMAND what — any command; passes when it exits 0.
check() {
    local what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}

# data_state: a one-line fingerprint of what is stored (for "nothing half-written").
data_state() {
    local blobs tmps
    blobs=$(find "$DATA/blobs" -type f 2>/dev/null | wc -l)
    tmps=$(find "$DATA/tmp" -type f 2>/dev/null | wc -l)
    echo "blobs=$blobs tmp=$tmps"
}

finish() {
    stop_server
    rm -rf "$TEST_DIR"
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
trap 'if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null; fi' EXIT
