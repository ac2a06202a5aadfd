#!/usr/bin/env bash
# Tokens and scopes: --auth refuses to start without tokens; 401 with
# WWW-Authenticate without or with a wrong token; read < write < admin (403);
# revoked tokens stop working; only the hash is stored; beyond loopback auth
# is forced on.
. "$(dirname "$0")/lib.sh"

out=$("$STRATA_BIN" serve --listen 127.0.0.1:0 --data "$DATA" --auth 2>&1); rc=$?
check "--auth without tokens refuses to start (rc $rc)" test "$rc" -ne 0
check "and says how to create one" grep -q 'strata token create' <<<"$out"
out=$("$STRATA_BIN" serve --listen 0.0.0.0:0 --data "$DATA" 2>&1); rc=$?
check "beyond loopback without tokens refuses to start (rc $rc)" test "$rc" -ne 0

READ=$("$STRATA_BIN" token create --data "$DATA" --scope read --name ci-read 2>/dev/null)
WRITE=$("$STRATA_BIN" token create --data "$DATA" --scope write 2>/dev/null)
ADMIN=$("$STRATA_BIN" token create --data "$DATA" --scope admin 2>/dev/null)
check "token format strata_ + 64 hex" grep -Eq '^strata_[0-9a-f]{64}$' <<<"$READ"
check "tokens differ" test "$READ" != "$WRITE"
out=$("$STRATA_BIN" token create --data "$DATA" --scope root 2>&1); rc=$?
check "unknown scope refused (rc $rc)" test "$rc" -ne 0
check "only hashes are stored" bash -c "! grep -qa '${READ#strata_}' '$DATA/strata.db' '$DATA/strata.db-wal' 2>/dev/null"
list=$("$STRATA_BIN" token list --data "$DATA")
check "token list shows names and scopes, not tokens" bash -c "grep -q ci-read <<<'$list' && ! grep -q strata_ <<<'$list'"

start_server --auth
req GET /healthz
expect_status 200 "healthz needs no token"
req GET /v1/models
expect_error 401 unauthorized "no token"
check "WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$HEADERS"
req GET /v1/models -H 'Authorization: Bearer strata_0000'
expect_error 401 unauthorized "unknown token"

CURL_AUTH=(-H "Authorization: Bearer $READ")
req GET /v1/models
expect_status 200 "read token reads"
req POST /v1/models -d '{"name":"m"}'
expect_error 403 forbidden "read token cannot write"
expect_jq '.error.details.needed' write "403 says what is needed"

CURL_AUTH=(-H "Authorization: Bearer $WRITE")
req POST /v1/models -d '{"name":"m"}'
expect_status 201 "write token creates"
req DELETE /v1/models/m
expect_error 403 forbidden "write token cannot delete"

CURL_AUTH=(-H "Authorization: Bearer $ADMIN")
req DELETE /v1/models/m
expect_status 200 "admin deletes"

id=$("$STRATA_BIN" token list --data "$DATA" | jq -r '.items[] | select(.name == "ci-read") | .id')
"$STRATA_BIN" token revoke --data "$DATA" --id "$id" >/dev/null
CURL_AUTH=(-H "Authorization: Bearer $READ")
req GET /v1/models
expect_error 401 unauthorized "revoked token"
check "the access log never shows a token" bash -c "! grep -q strata_ '$TEST_DIR/server.log'"
stop_server

# Beyond loopback with tokens: auth is on without --auth (traffic stays on 127.0.0.1).
start_server_any() {
    "$STRATA_BIN" serve --listen 0.0.0.0:0 --data "$DATA" >"$TEST_DIR/server.out" 2>>"$TEST_DIR/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do grep -q 'listening on' "$TEST_DIR/server.out" 2>/dev/null && break; sleep 0.05; done
    BASE=http://127.0.0.1:$(sed -n 's/.*listening on http:[^:]*:\([0-9]*\),.*/\1/p' "$TEST_DIR/server.out")
}
start_server_any
check "serve says auth is on" grep -q 'auth on' "$TEST_DIR/server.out"
CURL_AUTH=()
req GET /v1/models
expect_error 401 unauthorized "auth forced on beyond loopback"

finish
