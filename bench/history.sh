#!/usr/bin/env bash
# bench/history.sh — issue 5's and 7's scale figures (not run by CI).
#   100 000 epochs x 10 metrics in one model: full-run and 1-metric history
#   queries (< 50 ms each); order_by=metrics.X over 1 000 000 versions (< 5 ms).
# Two layouts of the 100 000 epochs: model "many" = 100 runs x 1 000 epochs
# (a full run is 10 000 values), model "big" = ONE run of 100 000 epochs (a
# full run is 1 000 000 values, ~21 MB of JSON — reported for completeness).
# Timings are curl's time_total against the real server, median of 7, warm.
# Usage: bench/history.sh [BUILD_DIR]   (needs the sqlite3 CLI)
#   The build measured: BUILD_DIR, else the directory of $STRATA_BIN (what
#   bench/run passes), else build-hist. Its strata binary serves and its
#   libstrata_storage.a fills the data (both must be from the same build);
#   the script stops when the database lacks a migration of migrations/.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then BUILD=$1
elif [ -n "${STRATA_BIN:-}" ]; then BUILD=$(cd "$(dirname "$STRATA_BIN")" && pwd)
else BUILD=$ROOT/build-hist; fi
for f in "$BUILD/strata" "$BUILD/libstrata_storage.a"; do
    [ -e "$f" ] || { echo "history.sh: $f missing (build $BUILD first)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/strata-bench-history.XXXXXX)
DATA=$WORK/data
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
echo "# build $BUILD ($(stat -c %y "$BUILD/strata" | cut -d. -f1)), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+local changes')"

command -v sqlite3 >/dev/null || { echo "needs the sqlite3 CLI (apt-get install sqlite3)" >&2; exit 1; }
gcc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT/storage" $(pkg-config --cflags jansson) \
    "$ROOT/bench/history_fill.c" "$BUILD/libstrata_storage.a" \
    $(pkg-config --libs sqlite3 jansson libcrypto) -lpthread -lm -o "$WORK/history_fill"
"$WORK/history_fill" "$DATA"
t0=$(date +%s.%N)
sqlite3 "$DATA/strata.db" < "$ROOT/bench/history_versions.sql"
printf 'write: 1000000 versions + 2000000 version_metrics via sqlite3: %.0f ms\n' \
    "$(echo "($(date +%s.%N) - $t0) * 1000" | bc)"

"$BUILD/strata" serve --listen 127.0.0.1:0 --data "$DATA" --threads 2 >"$WORK/out" 2>"$WORK/log" &
SERVER_PID=$!
for _ in $(seq 600); do grep -q 'listening on' "$WORK/out" 2>/dev/null && break; sleep 0.05; done
BASE=$(sed -n 's/.*listening on \(http:[^,]*\),.*/\1/p' "$WORK/out")
[ -n "$BASE" ] || { echo "server did not start: $(cat "$WORK/out" "$WORK/log")" >&2; exit 1; }

# The measured database must have every migration of this tree (an old
# build dir once measured a schema without 0003's index).
missing=$(for f in "$ROOT"/migrations/*.sql; do
    n=$(basename "$f" .sql)
    [ "$(sqlite3 "$DATA/strata.db" "SELECT count(*) FROM schema_migrations WHERE name = '$n'")" = 1 ] || echo "$n"
done)
[ -z "$missing" ] || { echo "history.sh: migrations not applied by $BUILD: $missing (rebuild it)" >&2; exit 1; }
echo "# migrations: $(sqlite3 "$DATA/strata.db" "SELECT group_concat(name, ' ') FROM schema_migrations")"

# time NAME PATH: median of 7 runs (after one warm-up) in ms, and the answer size.
time_it() {
    local name=$1 path=$2 t=() size code
    code=$(curl -s -o "$WORK/body" -w '%{http_code}' "$BASE$path")
    size=$(stat -c %s "$WORK/body")
    [ "$code" = 200 ] || { echo "$name: HTTP $code: $(head -c 300 "$WORK/body")" >&2; exit 1; }
    for _ in 1 2 3 4 5 6 7; do
        t+=("$(curl -s -o /dev/null -w '%{time_total}' "$BASE$path")")
    done
    printf '%-58s %7.1f ms  (%s bytes)\n' "$name" \
        "$(printf '%s\n' "${t[@]}" | sort -n | sed -n 4p | awk '{print $1 * 1000}')" "$size"
}

echo "--- queries (median of 7) ---"
time_it "many: full run r042 (1000 epochs x 10 metrics)"   "/v1/models/many/history?run=r042"
time_it "many: 1 metric of run r042"                        "/v1/models/many/history?run=r042&metrics=val_loss"
time_it "many: 1 metric of all 100 runs (100000 values)"    "/v1/models/many/history?metrics=val_loss"
time_it "many: run list (100 runs, best of each metric)"    "/v1/models/many/runs"
time_it "big: 1 metric of the 100000-epoch run"             "/v1/models/big/history?run=r1&metrics=val_loss"
time_it "big: 1 metric, epochs 50000..50999"                "/v1/models/big/history?run=r1&metrics=val_loss&from_epoch=50000&to_epoch=50999"
time_it "big: full 100000-epoch run (1000000 values)"       "/v1/models/big/history?run=r1"
time_it "big: full run as CSV"                              "/v1/models/big/history?run=r1&format=csv"
time_it "vbench: order_by=metrics.val_loss asc limit 5 (1M versions)" "/v1/models/vbench/versions?order_by=metrics.val_loss&order=asc&limit=5"
time_it "vbench: order_by=metrics.val_loss desc limit 100"  "/v1/models/vbench/versions?order_by=metrics.val_loss&order=desc&limit=100"
time_it "vbench: run=r7 order_by=metrics.loss limit 5"      "/v1/models/vbench/versions?run=r7&order_by=metrics.loss&order=asc&limit=5"

echo "--- EXPLAIN QUERY PLAN ---"
# The searches: the SQL st_version_list builds (history_fill --explain).
"$WORK/history_fill" --explain "$DATA"
# History: the statements of storage/history.c, copied (keep them in step).
plan() { echo "# $1"; sqlite3 "$DATA/strata.db" "EXPLAIN QUERY PLAN $2" | sed 's/^/    /'; }
plan "history, one metric of a run (st_run_read)" \
  "SELECT epoch, value FROM history WHERE run_id = 1 AND metric = 'loss' AND epoch >= 0 AND epoch <= 99 ORDER BY epoch"
plan "history, an epoch of a run (st_history_put replace)" \
  "DELETE FROM history INDEXED BY history_run_epoch WHERE run_id = 1 AND epoch = 5"
plan "run list, next metric and its min (st_run_best)" \
  "SELECT metric, value, epoch FROM history INDEXED BY history_best WHERE run_id = 1 AND metric > 'loss' ORDER BY metric, value, epoch LIMIT 1"
plan "run list, a max metric (st_run_best)" \
  "SELECT value, epoch FROM history INDEXED BY history_best WHERE run_id = 1 AND metric = 'val_accuracy' AND value = (SELECT value FROM history INDEXED BY history_best WHERE run_id = 1 AND metric = 'val_accuracy' ORDER BY value DESC LIMIT 1) ORDER BY epoch LIMIT 1"
