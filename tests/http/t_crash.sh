#!/usr/bin/env bash
# Crash safety: the server is killed with SIGKILL at CRASH_POINTS moments
# (default 80, 30 under ASan; tests/long/ runs >= 1000) while clients upload, delete
# versions, move a tag and `strata gc` runs beside it (killed too). After each
# restart on the same data directory tmp/ is empty and the tag is where an
# acknowledged move (or the one in flight) put it; every CHECK_EVERY restarts
# and at the end tests/http/crash_check.py checks the database against the
# clients' log of acknowledged answers (integrity_check, foreign_key_check,
# every acknowledged upload present with its digest unless a delete of it was
# sent, acknowledged deletes gone, numbers never reused and gaps only where a
# delete was sent) and `strata verify` re-hashes every blob.
# Kill moments come from a seeded PRNG (CRASH_SEED), so a failure replays.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
# CI: 150 kill points (about 2 min here); under ASan (the suite's second run)
# an upload takes 3x longer, so 40 points with 3x the delays.
if nm -D "$STRATA_BIN" 2>/dev/null | grep -q __asan_init; then
    POINTS=${CRASH_POINTS:-40} SCALE=3
else
    POINTS=${CRASH_POINTS:-150} SCALE=1
fi
CHECK_EVERY=${CHECK_EVERY:-20}
RANDOM=${CRASH_SEED:-4242}
HERE=$(cd "$(dirname "$0")" && pwd)
LOGS=$TEST_DIR/clients
mkdir -p "$LOGS"
files=("$KERAS"/k1_1.1.2_weights_cnn_tf.h5 "$KERAS"/k2_2.0.0_weights_conv2d_dropout.h5
       "$KERAS"/k2_2.0.6_weights_cnn_bn_dropout.h5 "$KERAS"/k2_2.1.3_full_cnn_bn.h5
       "$KERAS"/tfk_2.4.0_full_conv1d_adam.h5)
for f in "${files[@]}"; do sha256sum "$f" | cut -d' ' -f1; done >"$TEST_DIR/digests"

start_server --threads 4
req POST /v1/models -d '{"name":"m"}'
expect_status 201 "create model"
# Versions 1..3 are pinned: never deleted, the tag moves among them, and
# their blobs stay referenced (the other two files' blobs come and go: gc).
for i in 0 1 2; do
    req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -T "${files[$i]}"
    expect_status 201 "pinned upload $((i + 1))"
    echo "U $(jq -r '.version' <<<"$BODY") $(jq -r '.digest' <<<"$BODY" | cut -c8-)" >>"$LOGS/setup.log"
done

# ---- the clients (each loops until $stop exists; logs only what it was told) --------
uploader() {   # LOG SEED
    local log=$1 n=$2 code f body
    while [ ! -e "$stop" ]; do
        n=$(( (n * 1103515245 + 12345) & 0x7fffffff ))
        f=${files[$(( (n >> 16) % ${#files[@]} ))]}
        body=$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST -H 'Content-Type: application/x-hdf5' \
               --data-binary @"$f" "$BASE/v1/models/m/versions" 2>/dev/null)
        code=${body##*$'\n'}
        if [ "$code" = 201 ]; then
            jq -r '"U \(.version) \(.digest[7:])"' <<<"${body%$'\n'*}" >>"$log" 2>/dev/null || echo "u 201-unparsed" >>"$log"
        else
            echo "u $code" >>"$log"; sleep 0.02
        fi
    done
}
deleter() {    # LOG: deletes acknowledged, unpinned, not yet deleted versions
    local log=$1 v code
    while [ ! -e "$stop" ]; do
        v=$(cat "$LOGS"/*.log | awk '$1 == "U" && $2 > 3 {u[$2] = 1} $1 == "d" {d[$2] = 1}
                                   END {for (k in u) if (!(k in d)) {print k; exit}}')
        if [ -z "$v" ]; then sleep 0.05; continue; fi
        echo "d $v" >>"$log"
        code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE "$BASE/v1/models/m/versions/$v" 2>/dev/null)
        if [ "$code" = 200 ]; then echo "D $v" >>"$log"; else echo "x $v $code" >>"$log"; sleep 0.02; fi
    done
}
tagger() {     # LOG SEED: moves tag 'stage' among the pinned versions, one at a time
    local log=$1 n=$2 v code
    while [ ! -e "$stop" ]; do
        n=$(( (n * 1103515245 + 12345) & 0x7fffffff ))
        v=$(( (n >> 16) % 3 + 1 ))
        echo "t $v" >>"$log"
        code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PUT "$BASE/v1/models/m/tags/stage" \
               -d "{\"version\": $v}" 2>/dev/null)
        if [ "$code" = 200 ] || [ "$code" = 201 ]; then echo "T $v" >>"$log"; else sleep 0.02; fi
    done
}

full_check() {   # what: checks the database and the blobs against every log
    local what=$1 out rc=0
    out=$(/usr/bin/python3 "$HERE/crash_check.py" "$DATA/strata.db" "$TEST_DIR/digests" "$LOGS"/*.log 2>&1) || rc=$?
    check "$what: database consistent with every acknowledged answer ($out)" test "$rc" -eq 0
    rc=0
    out=$("$STRATA_BIN" verify --data "$DATA" 2>&1) || rc=$?
    check "$what: strata verify clean ($(tail -2 <<<"$out" | tr '\n' ' '))" test "$rc" -eq 0
}

tag_ok=0 tag_bad=0 tmp_bad=0 restarts=0 gc_runs=0 gc_killed=0
t0=$(date +%s)
for round in $(seq 1 "$POINTS"); do
    stop=$TEST_DIR/stop.$round
    logp=$LOGS/r$(printf '%05d' "$round")     # zero-padded: the glob lists rounds in order
    pids=()
    uploader "$logp.up1.log" $((RANDOM + 1)) & pids+=($!)
    uploader "$logp.up2.log" $((RANDOM + 7)) & pids+=($!)
    deleter "$logp.del.log" & pids+=($!)
    tagger "$logp.tag.log" $((RANDOM + 3)) & pids+=($!)
    # Kill after 50..900 ms (an upload takes 100-300 ms here, so the kills land
    # in every phase of one); every third round `strata gc` starts meanwhile.
    delay=$(( (RANDOM % 850 + 50) * SCALE ))
    gcpid=
    if [ $((RANDOM % 3)) -eq 0 ]; then
        gc_delay=$(( RANDOM % delay ))
        sleep "$(printf '0.%03d' "$gc_delay")"
        "$STRATA_BIN" gc --data "$DATA" --grace 1 >/dev/null 2>>"$TEST_DIR/gc.err" &
        gcpid=$!
        gc_runs=$((gc_runs + 1))
        delay=$((delay - gc_delay))
    fi
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    touch "$stop"           # first: no client starts a request against the dead server
    kill -9 "$SERVER_PID"
    if [ -n "$gcpid" ] && kill -9 "$gcpid" 2>/dev/null; then gc_killed=$((gc_killed + 1)); fi
    wait "$SERVER_PID" 2>/dev/null
    [ -n "$gcpid" ] && wait "$gcpid" 2>/dev/null
    SERVER_PID=
    wait "${pids[@]}"

    # (start_server reads the port from server.out: a stale one from the killed
    # server must not be there while the new one has not written its own.)
    rm -f "$TEST_DIR/server.out"
    start_server --threads 4
    restarts=$((restarts + 1))
    n=$(find "$DATA/tmp" -type f | wc -l)
    if [ "$n" -ne 0 ]; then tmp_bad=$((tmp_bad + 1)); echo "round $round: $n temp file(s) after restart" >&2; fi
    # The tag: where the last acknowledged move put it, or where one of the
    # moves sent after it (unanswered: in flight at the kill) put it.
    allowed=$(cat "$LOGS"/*.tag.log 2>/dev/null | awk '$1 == "T" {last = $2; pend = ""} $1 == "t" {pend = pend " " $2}
                                                  END {print (last == "" ? "none" : last) pend}')
    got=$(curl -sS --max-time 5 "$BASE/v1/models/m/tags" | jq -r '(.items[] | select(.tag == "stage") | .version) // "none"')
    if [ -n "$got" ] && grep -qw -- "$got" <<<"$allowed"; then tag_ok=$((tag_ok + 1))
    else tag_bad=$((tag_bad + 1)); echo "round $round: tag stage at '$got', allowed '$allowed'" >&2; fi
    if [ $((round % CHECK_EVERY)) -eq 0 ] && [ "$round" -lt "$POINTS" ]; then full_check "after restart $round"; fi
done
elapsed=$(( $(date +%s) - t0 ))
acked=$(cat "$LOGS"/*.log | grep -c '^U ')
dels=$(cat "$LOGS"/*.log | grep -c '^D ')
moves=$(cat "$LOGS"/*.log | grep -c '^T ')
echo "upload answers: $(cat "$LOGS"/*.up*.log | awk '{print $1 == "U" ? 201 : $2}' | sort | uniq -c | tr -s ' \n' ' ')" >&2
echo "crash test: $POINTS kill points in ${elapsed}s, $acked acknowledged uploads, $dels deletes, $moves tag moves, gc ran $gc_runs times ($gc_killed killed mid-run)" >&2
check "after each of $restarts restarts tmp/ was empty ($tmp_bad not)" test "$tmp_bad" -eq 0
check "after each restart the tag was where an acknowledged move put it ($tag_bad wrong of $((tag_ok + tag_bad)))" test "$tag_bad" -eq 0
check "the clients were acknowledged many times ($acked uploads, $dels deletes, $moves moves)" \
    test "$acked" -ge 5 -a "$dels" -gt 0 -a "$moves" -gt 0
full_check "at the end"
# The API agrees with the database: each acknowledged, undeleted upload answers with its digest.
missing=0
while read -r _ v d; do
    got=$(curl -sS "$BASE/v1/models/m/versions/$v" | jq -r '.digest')
    [ "$got" = "sha256:$d" ] || { missing=$((missing + 1)); echo "version $v: '$got', acknowledged sha256:$d" >&2; }
done < <(cat "$LOGS"/*.log | awk '$1 == "U" {u[$2] = $3} $1 == "d" {d[$2] = 1} END {for (k in u) if (!(k in d)) print "U", k, u[k]}')
check "every acknowledged upload not deleted is served by the API with its digest ($missing wrong)" test "$missing" -eq 0
finish
