#!/usr/bin/env bash
# Training history (issue 5): the three input forms (one epoch, a Keras
# History dict, a CSVLogger file), re-posted epochs (epochs_updated),
# filters, the CSV round trip, checkpoints in the history answer, the run
# list, the monitor's `best` following min and max (and its tag history),
# version search by metrics, and every bad input answering 400 with nothing
# stored.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
start_server
mnist=$KERAS/k2_2.1.2_weights_mnist_cnn.h5

H=/v1/models/m/history
snap() { curl -s "$BASE$H" | jq -S -c .; }
json() { req POST "$1" -H 'Content-Type: application/json' -d "$2"; }
csv()  { req POST "$1" -H 'Content-Type: text/csv' --data-binary "$2"; }
uri()  { jq -rn --arg v "$1" '$v|@uri'; }
# upload RUN EPOCH METRICS-JSON [model] → a version with that metadata
upload() {
    req POST "/v1/models/${4:-m}/versions?run=$1&epoch=$2&metrics=$(uri "$3")" \
        -H 'Content-Type: application/x-hdf5' -T "$mnist"
}

req POST /v1/models -d '{"name":"m","monitor":{"metric":"val_loss","mode":"min"}}'
expect_status 201 "model m (monitor val_loss min)"
req POST /v1/models -d '{"name":"acc","monitor":{"metric":"val_accuracy","mode":"max"}}'
expect_status 201 "model acc (monitor val_accuracy max)"

# ---- 1a. one epoch, as on_epoch_end sends it -------------------------------
json $H '{"run":"r1","epoch":0,"metrics":{"loss":0.93,"accuracy":0.5}}'
expect_status 201 "one epoch"
expect_jq '"\(.run) \(.epochs_added) \(.epochs_updated)"' "r1 1 0" "one epoch: counts"
json $H '{"run":"r1","epoch":0,"metrics":{"loss":0.9,"accuracy":0.55}}'
expect_status 201 "same epoch again"
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "0 1" "re-posted epoch counts as updated"
req GET "$H?run=r1"
expect_jq '.runs[0].metrics.loss|tojson' '[0.9]' "re-posted epoch replaced its values"

# ---- 1b. a whole History dict (resumed: initial_epoch) ---------------------
json $H '{"run":"r1","history":{"loss":[0.8,0.7,0.6],"accuracy":[0.6,0.7,null],"val_loss":[1.0,0.9,0.85]},"initial_epoch":0}'
expect_status 201 "History dict"
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "2 1" "dict: epochs 1,2 added, 0 updated"
json $H '{"run":"r1","history":{"loss":[0.55,0.5],"val_loss":[0.8,0.75]},"initial_epoch":3}'
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "2 0" "dict from initial_epoch 3"
json $H '{"run":"r1","history":{"loss":[0.65]},"epochs":[2]}'
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "0 1" "dict with explicit epochs (History.epoch)"
req GET "$H?run=r1"
expect_status 200 "get history"
expect_jq '.runs[0].epochs|tojson' '[0,1,2,3,4]' "epochs ascending"
expect_jq '.runs[0].metrics | keys | join(",")' "accuracy,loss,val_loss" "every metric of the run"
expect_jq '.runs[0].metrics.loss|tojson' '[0.8,0.7,0.65,0.55,0.5]' "loss column"
expect_jq '.runs[0].metrics.accuracy|tojson' '[0.6,0.7,null,null,null]' "null where an epoch lacks a metric (epoch 2 replaced whole, epoch 0 by the dict)"
expect_jq '.runs[0].metrics.val_loss|tojson' '[1,0.9,null,0.8,0.75]' "val_loss aligned"

# ---- 1b'. what Keras' own RemoteMonitor(send_as_json=True) posts: {"epoch", <logs>}, run from ?run=
req POST /v1/models -d '{"name":"rmon"}'
json "/v1/models/rmon/history?run=rm" '{"epoch":0,"loss":0.5,"accuracy":0.75,"val_loss":null}'
expect_status 201 "RemoteMonitor body, run from the query"
expect_jq '"\(.run) \(.epochs_added) \(.epochs_updated)"' "rm 1 0" "RemoteMonitor: counts"
json "/v1/models/rmon/history?run=rm" '{"epoch":1,"loss":0.25,"accuracy":0.875}'
req GET "/v1/models/rmon/history?run=rm"
expect_jq '.runs[0].metrics.loss|tojson' '[0.5,0.25]' "RemoteMonitor: loss per epoch"
expect_jq '.runs[0].metrics|keys|join(",")' "accuracy,loss" "RemoteMonitor: null is no value, not a metric"

# ---- 1c. a CSVLogger file ----------------------------------------------------
csvfile=$'epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,0.9300000071525574,0.52,0.88\r\n1,0.61,0.71,0.6,0.7\r\n2,0.7,0.5,NA,0.66\r\n'
csv "$H?run=c1" "$csvfile"
expect_status 201 "CSVLogger file (CRLF)"
expect_jq '"\(.run) \(.epochs_added) \(.epochs_updated)"' "c1 3 0" "CSV counts"
req GET "$H?run=c1&format=csv"
expect_status 200 "get CSV"
expect_header Content-Type "text/csv; charset=utf-8" "CSV media type"
check "CSV round trip gives back the same file" [ "$BODY" = "$csvfile" ]
# append=True after a resume: the header repeated, epochs 2.. again; the later rows win
csv "$H?run=c2" $'epoch,loss,val_loss\n0,1.5,1.6\n1,1.25,1.3\n2,1.0,1.1\n\nepoch,loss,val_loss\n2,0.75,0.8\n3,0.5,0.6\n'
expect_status 201 "CSV with a repeated header (LF)"
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "4 0" "CSV with a repeated epoch counts it once"
req GET "$H?run=c2"
expect_jq '.runs[0].metrics.loss|tojson' '[1.5,1.25,0.75,0.5]' "the later row of an epoch wins"
# numeric round trip of numbers written differently (1.0, 2.50, 1e-05); columns come back sorted
csv "$H?run=c3" $'epoch,lr,loss\n0,1.0,2.50\n1,1e-05,0.125\n2,0.000123456789,3\n'
req GET "$H?run=c3&format=csv"
check "numeric CSV round trip" awk -F, 'NR==1{ok=($0=="epoch,loss,lr")} NR==2{ok=ok&&$3==1&&$2==2.5} NR==3{ok=ok&&$3==0.00001&&$2==0.125} NR==4{ok=ok&&$3==0.000123456789&&$2==3} END{exit !(ok&&NR==4)}' <(printf '%s' "$BODY" | tr -d '\r')
csv "$H?run=c3" "$BODY"
expect_jq '"\(.epochs_added) \(.epochs_updated)"' "0 3" "posting the downloaded CSV back updates, changes nothing"

# ---- 2. checkpoints: upload metrics land in history, listed epoch → version --
upload r1 5 '{"loss":0.45,"val_loss":0.5}'
expect_status 201 "checkpoint r1@5"
v1=$(jq -r .version <<<"$BODY")
upload r1 6 '{"loss":0.4,"val_loss":0.3}'
v2=$(jq -r .version <<<"$BODY")
upload r1 7 '{"loss":0.35,"val_loss":0.4}'
v3=$(jq -r .version <<<"$BODY")
upload r1 8 '{"loss":0.3,"val_loss":0.2}'
v4=$(jq -r .version <<<"$BODY")
req GET "$H?run=r1&metrics=val_loss&from_epoch=5"
expect_jq '.runs[0].epochs|tojson' '[5,6,7,8]' "upload epochs are in history"
expect_jq '.runs[0].metrics.val_loss|tojson' '[0.5,0.3,0.4,0.2]' "upload metrics are in history"
expect_jq '[.runs[0].checkpoints[] | "\(.epoch)>\(.version)"] | join(",")' "5>$v1,6>$v2,7>$v3,8>$v4" "checkpoints epoch → version"
upload r9 3 '{"val_loss":0.9}'
req GET "$H?run=r9"
expect_jq '"\(.runs[0].epochs) \(.runs[0].checkpoints[0].epoch)"' "[3] 3" "a run exists as soon as a checkpoint names it"

# ---- 3. filters -------------------------------------------------------------------
req GET "$H?run=r1&metrics=loss,val_loss&from_epoch=1&to_epoch=3"
expect_jq '.runs | length' 1 "run filter"
expect_jq '.runs[0].epochs|tojson' '[1,2,3]' "epoch range"
expect_jq '.runs[0].metrics | keys | join(",")' "loss,val_loss" "metrics filter"
expect_jq '.runs[0].checkpoints|tojson' '[]' "checkpoints outside the range are left out"
req GET "$H?metrics=val_accuracy"
expect_jq '[.runs[] | select(.epochs | length > 0) | .run] | join(",")' "c1" "a metric only one run has"
expect_jq '.runs | length' 5 "every run when run= is absent"
req GET "$H?run=r1&metrics=nosuch"
expect_jq '"\(.runs[0].epochs) \(.runs[0].metrics.nosuch)"' "[] []" "a metric the run lacks: empty"

# ---- runs ---------------------------------------------------------------------------
req GET /v1/models/m/runs
expect_status 200 "list runs"
expect_jq '[.items[].run] | join(",")' "c1,c2,c3,r1,r9" "runs by name"
expect_jq '.next' null "one page"
expect_jq '.items[] | select(.run=="r1") | "\(.epochs) \(.first_epoch) \(.last_epoch)"' "9 0 8" "r1 counts"
expect_jq '.items[] | select(.run=="r1") | .best.val_loss | "\(.value) \(.epoch) \(.mode)"' "0.2 8 min" "best val_loss (min)"
expect_jq '.items[] | select(.run=="c1") | .best.val_accuracy | "\(.value) \(.epoch) \(.mode)"' "0.6 1 max" "best val_accuracy (max)"
expect_jq '.items[] | select(.run=="r1") | .checkpoints | length' 4 "r1 checkpoints"
expect_jq '.items[0].created_at | test("^[0-9-]+T[0-9:]+Z$")' true "created_at"
req GET "/v1/models/m/runs?limit=2"
expect_jq '"\([.items[].run] | join(",")) \(.next)"' "c1,c2 c2" "runs page 1"
req GET "/v1/models/m/runs?limit=2&after=c2"
expect_jq '[.items[].run] | join(",")' "c3,r1" "runs page 2"
req GET /v1/models/nope/runs
expect_error 404 not_found "runs of an unknown model"

# ---- 4. monitor: best follows min (m: val_loss) and max (acc: val_accuracy) --------
req GET /v1/models/m/tags/best
expect_jq '.version' "$v4" "best = lowest val_loss"
req GET /v1/models/m/tags/best/history
expect_jq '[.items[] | "\(.from_version)>\(.to_version):\(.reason)"] | join(",")' \
    "null>$v1:monitor,$v1>$v2:monitor,$v2>$v4:monitor" "best moves recorded (worse v3 skipped)"
for x in 0.5 0.7 0.6 0.9 0.1; do upload r1 1 "{\"val_accuracy\":$x}" acc; done
req GET /v1/models/acc/tags/best
expect_jq '.version' 4 "best = highest val_accuracy"
req GET /v1/models/acc/tags/best/history
expect_jq '[.items[] | "\(.from_version)>\(.to_version)"] | join(",")' "null>1,1>2,2>4" "max monitor moves"
upload r1 2 '{"loss":0.1}' acc
req GET /v1/models/acc/tags/best
expect_jq '.version' 4 "a checkpoint without the monitored metric leaves best"

# ---- version search -------------------------------------------------------------------
req GET "/v1/models/m/versions?order_by=metrics.val_loss&order=asc"
expect_jq '[.items[].version] | join(",")' "$v4,$v2,$v3,$v1,5" "order_by metrics.val_loss asc"
req GET "/v1/models/m/versions?order_by=metrics.val_loss&order=desc&limit=2"
expect_jq '[.items[].version] | join(",")' "5,$v1" "desc with limit"
expect_jq '.next | type' string "a next cursor"
req GET "/v1/models/m/versions?order_by=metrics.val_loss&order=desc&limit=2&after=$(jq -r .next <<<"$BODY")"
expect_jq '[.items[].version] | join(",")' "$v3,$v2" "next page"
req GET "/v1/models/m/versions?run=r1&min_epoch=6&max_epoch=7&order_by=epoch"
expect_jq '[.items[].version] | join(",")' "$v2,$v3" "run + epoch range"
req GET "/v1/models/m/versions?tag=best"
expect_jq '[.items[].version] | join(",")' "$v4" "tag=best"
req GET "/v1/models/m/versions?order_by=metrics.loss&order=asc&run=r9"
expect_jq '.items | length' 0 "r9 has no loss"
req GET "/v1/models/m/versions?order_by=metrics.val_loss&order=sideways"
expect_error 400 bad_request "bad order"

# ---- 5. bad input: 400, the error shape, nothing stored ---------------------------------
before=$(snap)
bad_json() { json $H "$1"; expect_error 400 bad_request "$2"; check "$2: nothing stored" [ "$(snap)" = "$before" ]; }
bad_csv()  { csv "$H?run=${3:-r1}" "$1"; expect_error 400 bad_request "$2"; check "$2: nothing stored" [ "$(snap)" = "$before" ]; }

bad_json '{"run":"r1","history":{"loss":[0.1,0.2,0.3],"val_loss":[0.1,0.2]}}' "ragged History dict"
expect_jq '"\(.error.details.metric) \(.error.details.length) \(.error.details.expected)"' "val_loss 2 3" "ragged: which list"
bad_json '{"run":"r1","history":{"loss":[0.1,"x",0.3]}}' "a string in a History list"
expect_jq '"\(.error.details.metric) \(.error.details.index)"' "loss 1" "bad number: metric and index"
bad_json '{"run":"r1","history":{"loss":[0.1,true]}}' "a bool in a History list"
bad_json '{"run":"r1","history":{"loss":0.1}}' "History value not a list"
bad_json '{"run":"r1","history":{}}' "empty History dict"
bad_json '{"run":"r1","history":{"loss":[]}}' "History with no epochs"
bad_json '{"run":"r1","history":{"loss":[1]},"initial_epoch":-1}' "negative initial_epoch"
bad_json '{"run":"r1","history":{"loss":[1]},"initial_epoch":1.5}' "fractional initial_epoch"
bad_json '{"run":"r1","history":{"loss":[1,2]},"epochs":[0]}' "epochs of another length"
bad_json '{"run":"r1","history":{"loss":[1]},"epochs":[0],"initial_epoch":0}' "epochs and initial_epoch"
bad_json '{"run":"r1","history":{"loss":[1]},"initial_epochs":0}' "unknown field"
expect_jq '.error.details.field' "initial_epochs" "unknown field named"
bad_json '{"run":"r1","epoch":-1,"metrics":{"loss":1}}' "negative epoch"
bad_json '{"run":"r1","epoch":1.5,"metrics":{"loss":1}}' "non-integer epoch"
bad_json '{"run":"r1","epoch":"3","metrics":{"loss":1}}' "epoch as a string"
bad_json '{"run":"r1","epoch":1,"metrics":{"loss":"0.1"}}' "a metric as a string"
expect_jq '.error.details.metric' "loss" "bad metric value named"
bad_json '{"run":"r1","epoch":1,"metrics":{}}' "no metrics"
bad_json '{"run":"r1","epoch":1,"metrics":{"loss":null}}' "an epoch with no values"
bad_json '{"run":"r1","epoch":1,"metrics":{"bad name":1}}' "metric name with a space"
expect_jq '.error.details.metric' "bad name" "bad metric name named"
bad_json '{"run":"r1","epoch":1,"metrics":{"epoch":1}}' "metric named epoch"
bad_json "{\"run\":\"r1\",\"epoch\":1,\"metrics\":{\"$(printf 'a%.0s' $(seq 129))\":1}}" "metric name of 129 chars"
bad_json '{"run":"r 1","epoch":1,"metrics":{"loss":1}}' "bad run name"
bad_json '{"epoch":1,"metrics":{"loss":1}}' "missing run"
bad_json '{"run":7,"epoch":1,"metrics":{"loss":1}}' "run not a string"
bad_json '{"run":"r1","epoch":1,"metrics":{"loss":1e999}}' "a number out of range"
bad_json '{"epoch":1,"loss":1}' "RemoteMonitor body without ?run="
bad_json '{"run":"r1","epoch":1}' "RemoteMonitor body without metrics"
bad_json '{"run":"r1","epoch":1,"loss":"0.1"}' "RemoteMonitor: a metric as a string"
expect_jq '.error.details.metric' "loss" "RemoteMonitor: bad metric named"
bad_json '{"run":"r1","epoch":1,"loss":{"a":1}}' "RemoteMonitor: a metric as an object"
bad_json '{"run":"r1","epoch":-2,"loss":1}' "RemoteMonitor: negative epoch"
bad_json '{"run":"r1","epoch":1,"bad name":1}' "RemoteMonitor: bad metric name"
bad_json '{"run":"r1"}' "neither form"
bad_json '[1,2]' "body not an object"
bad_json '{"run":"r1",' "invalid JSON"
bad_json '{"run":"r1","history":{"loss":[1]},"history":{"loss":[2]}}' "duplicate keys"

bad_csv $'epoch,loss,val_loss\n0,0.1,0.2\n1,0.1,0.2\n2,0.1,0.2\n3,0.1,0.2\n4,0.1,0.2\n5,0.1,oops\n' "non-numeric cell"
expect_jq '"\(.error.details.row) \(.error.details.column)"' "7 val_loss" "non-numeric: row 7, column val_loss"
bad_csv $'epoch,loss,val_loss\n0,0.1,\n' "empty cell"
expect_jq '"\(.error.details.row) \(.error.details.column)"' "2 val_loss" "empty cell named"
bad_csv $'epoch,loss\n0,nan\n' "nan cell"
expect_jq '.error.message | test("finite")' true "nan: says only finite numbers are stored"
bad_csv $'epoch,loss\n0,inf\n' "inf cell"
bad_csv $'epoch,loss\n0,-inf\n' "-inf cell"
bad_csv $'epoch,loss\n0,0x10\n' "hex number"
bad_csv $'epoch,loss,val_loss\n0,0.1\n' "short row"
expect_jq '.error.details.row' 2 "short row named"
bad_csv $'epoch,loss\n0,0.1,0.2\n' "long row"
bad_csv $'0,0.1\n1,0.2\n' "no header"
bad_csv $'epoch,loss\n1.5,0.1\n' "fractional epoch"
expect_jq '.error.details.column' "epoch" "bad epoch named"
bad_csv $'epoch,loss\n-1,0.1\n' "negative epoch"
bad_csv $'epoch,loss\n0,"0.1\n' "unbalanced quote"
bad_csv $'epoch,loss,loss\n0,0.1,0.2\n' "duplicate column"
bad_csv $'epoch,bad name\n0,0.1\n' "bad metric name in the header"
bad_csv $'epoch,loss\n0,NA\n' "a row of NA only"
bad_csv $'epoch\n0\n' "header without metrics"
bad_csv '' "empty CSV"
bad_csv $'epoch,loss\n0,0.1\n' "bad run name" "bad%20run"
req POST "$H" -H 'Content-Type: text/csv' --data-binary $'epoch,loss\n0,0.1\n'
expect_error 400 bad_request "CSV without ?run="
check "CSV without run: nothing stored" [ "$(snap)" = "$before" ]
json /v1/models/nope/history '{"run":"r1","epoch":0,"metrics":{"loss":1}}'
expect_error 404 not_found "history of an unknown model"

# GET errors
req GET "$H?format=xml"
expect_error 400 bad_request "unknown format"
req GET "$H?format=csv"
expect_error 400 bad_request "CSV needs run="
req GET "$H?from_epoch=5&to_epoch=2"
expect_error 400 bad_request "from after to"
req GET "$H?from_epoch=-1"
expect_error 400 bad_request "negative from_epoch"
req GET "$H?metrics=a,,b"
expect_jq '.runs | length' 5 "empty items in metrics= are skipped"
req GET "$H?metrics=bad%20name"
expect_error 400 bad_request "bad metric name in metrics="
req GET "$H?run=nosuch"
expect_error 404 not_found "unknown run"
req GET /v1/models/nope/history
expect_error 404 not_found "unknown model"

# Concurrency: two posts to one run at once both land, all or nothing each.
pids=()
for i in 1 2 3 4; do
    curl -s -o /dev/null -X POST "$BASE$H" -d "{\"run\":\"par\",\"history\":{\"loss\":[$i,$i,$i]},\"initial_epoch\":$((i * 10))}" &
    pids+=($!)
done
wait "${pids[@]}"
req GET "$H?run=par"
expect_jq '.runs[0].epochs | length' 12 "parallel posts all stored"

# ---- numbers: exact round trips, Python's repr digits (issue 7's number text) --
# 3000 doubles written as Python writes them (json.dumps and CSVLogger use
# repr: shortest, and the closest of the shortest): random bit patterns,
# float32 values as Keras logs them, decimals, tiny and huge. Both answers
# must give back the same digits (integral values without ".0") and, parsed,
# the same doubles bit for bit. (Not -0.0: SQLite stores it as 0.)
/usr/bin/python3 - "$TEST_DIR/nums" <<'PY'
import json, random, struct, sys
random.seed(7)
vals = []
while len(vals) < 3000:
    k = len(vals) % 4
    if k == 0:
        v = struct.unpack('<d', struct.pack('<Q', random.getrandbits(64)))[0]
    elif k == 1:
        v = struct.unpack('<f', struct.pack('<I', random.getrandbits(32)))[0]
    elif k == 2:
        v = random.randrange(10**6) / 10**random.randrange(1, 9)
    else:
        v = random.choice([5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e15,
                           0.1, 1e-5, 123456789012345680.0, 3.0, 735.78619384765625])
    if v == v and abs(v) != float('inf'):
        vals.append(v)
n = len(vals) // 2
body = {"run": "nums", "history": {"a": vals[:n], "b": vals[n:2 * n]}, "initial_epoch": 0}
open(sys.argv[1] + ".json", "w").write(json.dumps(body))
json.dump(vals[:2 * n], open(sys.argv[1] + ".want", "w"))
PY
req POST "$H" -H 'Content-Type: application/json' --data-binary "@$TEST_DIR/nums.json"
expect_status 201 "3000 doubles posted"
curl -s -o "$TEST_DIR/nums.got.json" "$BASE$H?run=nums"
curl -s -o "$TEST_DIR/nums.got.csv" "$BASE$H?run=nums&format=csv"
check "JSON and CSV numbers: Python's digits, same doubles bit for bit" /usr/bin/python3 - "$TEST_DIR/nums" <<'PY'
import json, struct, sys
p = sys.argv[1]
want = json.load(open(p + ".want"))
n = len(want) // 2
def text(v):
    r = repr(v)
    return r[:-2] if r.endswith('.0') and abs(v) < 1e16 else r
raw = json.loads(open(p + ".got.json").read(), parse_float=str, parse_int=str)["runs"][0]["metrics"]
rows = [l.split(',') for l in open(p + ".got.csv", newline='').read().split('\r\n')[1:-1]]
got_json = raw["a"] + raw["b"]
got_csv = [r[1] for r in rows] + [r[2] for r in rows]
bad = 0
for w, gj, gc in zip(want, got_json, got_csv):
    for g in (gj, gc):
        if g != text(w) or struct.pack('<d', float(g)) != struct.pack('<d', w):
            bad += 1
            if bad < 5:
                print("value %r: got %r, want %r" % (w, g, text(w)), file=sys.stderr)
sys.exit(1 if bad or len(got_json) != 2 * n or len(got_csv) != 2 * n else 0)
PY

# ---- run list: epochs counted on write (0004's triggers), checkpoints included -
# A checkpoint at an epoch the run already has (its metrics replace rows) and
# at a new one; the same checkpoint again (INSERT OR REPLACE of the only row).
json $H '{"run":"cnt","history":{"loss":[0.5,0.4,0.3]},"initial_epoch":0}'
upload cnt 1 '{"loss":0.35}'
upload cnt 7 '{"val_loss":0.2}'
upload cnt 7 '{"val_loss":0.25}'
req GET /v1/models/m/runs
expect_jq '.items[] | select(.run=="cnt") | "\(.epochs) \(.first_epoch) \(.last_epoch)"' "4 0 7" "epoch count after checkpoints"
expect_jq '.items[] | select(.run=="cnt") | .best | "\(.loss.value)@\(.loss.epoch) \(.val_loss.value)@\(.val_loss.epoch)"' "0.3@2 0.25@7" "best after checkpoints"
req GET "$H?run=cnt"
expect_jq '.runs[0].epochs|tojson' '[0,1,2,7]' "history agrees"

# ---- version search forms (issue 7: each reads an index, not a sort) --------
req GET "/v1/models/m/versions?run=cnt&order_by=metrics.val_loss"
expect_jq '[.items[].epoch] | join(",")' "7,7" "run= with order_by=metrics"
req GET "/v1/models/m/versions?min_epoch=6&max_epoch=7&order_by=metrics.val_loss&order=desc"
expect_jq '[.items[] | "\(.run)@\(.epoch):\(.metrics.val_loss)"] | join(",")' "r1@7:0.4,r1@6:0.3,cnt@7:0.25,cnt@7:0.2" "narrow epoch range with order_by=metrics"
req GET "/v1/models/m/versions?tag=best&order_by=metrics.val_loss"
expect_jq '[.items[].version] | join(",")' "$v4" "tag= with order_by=metrics"
req GET "/v1/models/m/versions?order_by=epoch&order=desc&limit=2"
expect_jq '[.items[].epoch] | join(",")' "8,7" "order_by=epoch desc"

finish
