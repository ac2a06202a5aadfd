#!/usr/bin/env bash
# Lint of docker/ (no Docker engine runs here, so the image is not built):
# the compose file parses as YAML with the expected service, every path the
# Dockerfile copies exists, the run stage is debian:12-slim as a non-root
# user with a volume and a healthcheck, and the build stage installs every
# -dev package scripts/deps installs.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DF=$ROOT/docker/Dockerfile

out=$(/usr/bin/python3 - "$ROOT/docker/compose.yaml" <<'PY' 2>&1
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
s = d["services"]["strata"]
assert s["build"]["dockerfile"] == "docker/Dockerfile", s["build"]
assert any(v.endswith(":/data") for v in s["volumes"]), s["volumes"]
assert "healthz" in " ".join(s["healthcheck"]["test"])
print("ok")
PY
)
check "compose.yaml parses and has the strata service ($out)" test "$out" = ok
for p in $(sed -n 's/^COPY \([^-][^ ]*\) .*/\1/p' "$DF"); do
    check "Dockerfile copies $p, which exists" test -e "$ROOT/$p"
done
check "two stages: debian:12 then debian:12-slim" bash -c "grep -q '^FROM debian:12 AS build' '$DF' && grep -q '^FROM debian:12-slim' '$DF'"
check "runs as a non-root user" grep -q '^USER strata' "$DF"
check "has a volume for /data" grep -q '^VOLUME \["/data"\]' "$DF"
check "has a healthcheck on /healthz" grep -q 'HEALTHCHECK.*' "$DF"
for pkg in $(sed -n 's/^want=(\(.*\)/\1/p;s/^      \(lib.*\))$/\1/p' "$ROOT/scripts/deps" | tr ' ' '\n' | grep -- '-dev$'); do
    check "build stage installs $pkg" grep -q -- "$pkg" "$DF"
done
rm -rf "$TEST_DIR"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
