#!/usr/bin/env bash
# Transfer learning through the server: partial layer sets (?layers=
# ?exclude= ?for=), X-Strata-Layers, deterministic bytes/ETag and the cache,
# unknown names, keras2<->keras3 conversion, compatibility, per-layer stats
# (checked against numpy) and diffs. Partial files are read back with h5py
# the way Keras' by_name loader walks them (transfer_check.py).
# "Done when" (the seed's Example 3): a new architecture with another head,
# ?for= from the pretrained model's best, exactly the transferable layers.
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
PY=/usr/bin/python3
CHECK="$PY $(dirname "$0")/transfer_check.py"
K2W=$KERAS/k2_2.1.2_weights_mnist_cnn.h5
K2J=$KERAS/k2_2.1.2_mnist_cnn.model.json
K3W=$KERAS/k3_3.10.0_mnist_cnn.weights.h5
K3J=$KERAS/k3_3.10.0_mnist_cnn.model.json
start_server

get_file() {   # get_file PATH OUT: body to OUT, headers in $HEADERS, STATUS
    STATUS=$(curl -sS -D "$HEADERS" -o "$2" -w '%{http_code}' "$BASE$1")
}
header() { grep -i "^$1:" "$HEADERS" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# --- the pretrained model (Keras 2 mnist) with a best checkpoint ---------------
req POST "/v1/architectures?name=mnist" --data-binary @"$K2J"
ARCH=$(printf '%s' "$BODY" | jq -r .id)
req POST /v1/models -d "{\"name\":\"mnist\",\"architecture\":\"$ARCH\",\"monitor\":{\"metric\":\"val_loss\",\"mode\":\"min\"}}"
expect_status 201 "pretrained model"
req POST "/v1/models/mnist/versions?epoch=1&metrics=%7B%22val_loss%22%3A0.3%7D" -H 'Content-Type: application/x-hdf5' --data-binary @"$K2W"
expect_status 201 "upload v1"
expect_jq '.tags|index("best") != null' true "v1 is best"

# --- ?layers= -----------------------------------------------------------------
get_file "/v1/models/mnist/versions/best/weights?layers=dense_1,conv2d_1" "$TEST_DIR/p1.h5"
[ "$STATUS" = 200 ] && ok || bad "?layers: status $STATUS"
check "?layers: model order, datasets equal" $CHECK legacy "$TEST_DIR/p1.h5" "$K2W" conv2d_1,dense_1
expect_header Content-Type application/x-hdf5 "?layers content type"
expect_header Content-Disposition 'attachment; filename="mnist-v1-partial.h5"' "?layers disposition"
expect_header X-Strata-Layers conv2d_1,dense_1 "?layers X-Strata-Layers"
ET1=$(header ETag)
# the ETag names the request (blob, selection, format, writer), not a hash of the bytes
check "ETag is derived:<sha256 hex>" grep -Eq '^"derived:[0-9a-f]{64}"$' <<<"$ET1"
check "Content-Length" test "$(header Content-Length)" = "$(stat -c %s "$TEST_DIR/p1.h5")"
check "cache entry present (skeleton + map)" test "$(find "$DATA/cache" -name '*.skel' | wc -l)" -ge 1 -a "$(find "$DATA/cache" -name '*.json' | wc -l)" -ge 1
# same request (other spelling) twice: same bytes and ETag
get_file "/v1/models/mnist/versions/1/weights?layers=conv2d_1,dense_1,conv2d_1" "$TEST_DIR/p1b.h5"
check "same selection, same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p1b.h5"
check "same selection, same ETag" test "$(header ETag)" = "$ET1"
rm -rf "$DATA/cache"/*; sleep 1.1   # gc empties it: rebuilt identically (another second: no timestamps)
get_file "/v1/models/mnist/versions/1/weights?layers=dense_1,conv2d_1" "$TEST_DIR/p1c.h5"
check "rebuilt after the cache was emptied: same bytes" cmp -s "$TEST_DIR/p1.h5" "$TEST_DIR/p1c.h5"
check "rebuilt: same ETag" test "$(header ETag)" = "$ET1"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $ET1" "$BASE/v1/models/mnist/versions/1/weights?layers=dense_1,conv2d_1")
[ "$STATUS" = 304 ] && ok || bad "If-None-Match: $STATUS"
STATUS=$(curl -sS -o "$TEST_DIR/range" -w '%{http_code}' -H "Range: bytes=0-7" "$BASE/v1/models/mnist/versions/1/weights?layers=dense_1,conv2d_1")
check "Range 206 with the HDF5 signature" test "$STATUS:$(od -An -c -N4 "$TEST_DIR/range" | tr -d ' ')" = "206:211HDF"

# --- ?exclude= ----------------------------------------------------------------
get_file "/v1/models/mnist/versions/1/weights?exclude=dense_3" "$TEST_DIR/p2.h5"
check "?exclude: all but dense_3" $CHECK legacy "$TEST_DIR/p2.h5" "$K2W" conv2d_1,max_pooling2d_1,conv2d_2,max_pooling2d_2,dropout_1,flatten_1,dense_1,dense_2
get_file "/v1/models/mnist/versions/1/weights?layers=dense_1,dense_2,dense_3&exclude=dense_2" "$TEST_DIR/p3.h5"
check "?layers and ?exclude" $CHECK legacy "$TEST_DIR/p3.h5" "$K2W" dense_1,dense_3

# --- unknown names --------------------------------------------------------------
req GET "/v1/models/mnist/versions/1/weights?layers=dense_1,nope"
expect_error 400 bad_request "unknown layer name"
expect_jq '.error.details.valid|join(",")' conv2d_1,max_pooling2d_1,conv2d_2,max_pooling2d_2,dropout_1,flatten_1,dense_1,dense_2,dense_3 "valid names listed"
expect_jq '.error.details.unknown|join(",")' nope "unknown name listed"
req GET "/v1/models/mnist/versions/1/weights?exclude=zzz"
expect_error 400 bad_request "unknown excluded name"
req GET "/v1/models/mnist/versions/1/weights?format=keras4"
expect_error 400 bad_request "unknown format"

# --- Example 3: a new architecture with another head, ?for= from best --------------
jq '(.config[] | select(.config.name == "dense_3") | .config.units) = 5' "$K2J" >"$TEST_DIR/head5.json"
req POST "/v1/architectures?name=mnist-5" --data-binary @"$TEST_DIR/head5.json"
expect_status 201 "new head architecture"
NEW=$(printf '%s' "$BODY" | jq -r .id)
get_file "/v1/models/mnist/versions/best/weights?for=$NEW" "$TEST_DIR/for.h5"
[ "$STATUS" = 200 ] && ok || bad "?for: status $STATUS"
expect_header X-Strata-Layers conv2d_1,conv2d_2,dense_1,dense_2 "?for: X-Strata-Layers = the transferable layers"
check "?for: exactly the transferable layers" $CHECK legacy "$TEST_DIR/for.h5" "$K2W" conv2d_1,conv2d_2,dense_1,dense_2
ETF=$(header ETag)
get_file "/v1/models/mnist/versions/best/weights?for=$NEW" "$TEST_DIR/for2.h5"
check "?for twice: same bytes" cmp -s "$TEST_DIR/for.h5" "$TEST_DIR/for2.h5"
check "?for twice: same ETag" test "$(header ETag)" = "$ETF"
req GET "/v1/models/mnist/versions/best/weights?for=sha256:$(printf '%064d' 0)"
expect_error 404 not_found "?for unknown architecture"
req GET "/v1/models/mnist/versions/best/weights?for=bogus"
expect_error 400 bad_request "?for not an id"

# --- compatibility --------------------------------------------------------------
req GET "/v1/models/mnist/versions/best/compatibility?with=$NEW"
expect_status 200 "compatibility"
expect_jq '[.layers[]|"\(.name):\(.status)"]|join(",")' "conv2d_1:match,conv2d_2:match,dense_1:match,dense_2:match,dense_3:shape_mismatch" "per target layer with weights"
expect_jq '.layers[]|select(.name=="dense_3")|"\(.weight)|\(.expected)|\(.found)"' "kernel|[50,5]|[50,10]" "shape_mismatch details"
expect_jq '.unused|length' 0 "nothing unused"
jq '(.config[] | select(.config.name == "dense_3") | .config.name) = "dense_9"' "$TEST_DIR/head5.json" >"$TEST_DIR/head9.json"
req POST /v1/architectures --data-binary @"$TEST_DIR/head9.json"
N9=$(printf '%s' "$BODY" | jq -r .id)
req GET "/v1/models/mnist/versions/1/compatibility?with=$N9"
expect_jq '.layers[]|select(.name=="dense_9")|.status' missing "renamed head: missing"
expect_jq '.unused|join(",")' dense_3 "renamed head: old head unused"
req GET "/v1/models/mnist/versions/1/compatibility?with=sha256:$(printf '%064d' 0)"
expect_error 404 not_found "compatibility with an unknown architecture"
req GET "/v1/models/mnist/versions/1/compatibility"
expect_error 400 bad_request "compatibility without ?with="

# --- layers: stats against numpy -------------------------------------------------------
req GET /v1/models/mnist/versions/1/layers
expect_status 200 "layers"
expect_jq '[.items[]|.name]|join(",")' conv2d_1,max_pooling2d_1,conv2d_2,max_pooling2d_2,dropout_1,flatten_1,dense_1,dense_2,dense_3 "layers in model order"
expect_jq '.items[]|select(.name=="dense_1")|"\(.class)|\(.params)|\(.weights[0].name)|\(.weights[0].shape)"' "Dense|48128|kernel|[375,128]" "dense_1 class/params/weights"
printf '%s' "$BODY" >"$TEST_DIR/layers.json"
check "min/max/mean/std equal numpy's" $PY - "$K2W" "$TEST_DIR/layers.json" <<'EOF'
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); items = json.load(open(sys.argv[2]))["items"]
ok = True
for it in items:
    g = f[it["name"]]
    wn = [n.decode() for n in g.attrs["weight_names"]]
    for w, n in zip(it["weights"], wn):
        a = np.asarray(g[n], dtype=np.float64)
        for k, v in (("min", a.min()), ("max", a.max()), ("mean", a.mean()), ("std", a.std())):
            if abs(w[k] - v) > 1e-6 * max(1.0, abs(v)):
                print("stat", it["name"], n, k, w[k], v); ok = False
sys.exit(0 if ok else 1)
EOF
expect_jq '.items[]|select(.name=="dense_1")|.digest' "$(jq -r '.layers[]|select(.name=="dense_1")|.digest' <<<"$(curl -sS "$BASE/v1/models/mnist/versions/1")")" "layer digest = the version's"

# --- diff ---------------------------------------------------------------------------
$CHECK modify "$K2W" "$TEST_DIR/tuned.h5" dense_2
req POST "/v1/models/mnist/versions?epoch=2" -H 'Content-Type: application/x-hdf5' --data-binary @"$TEST_DIR/tuned.h5"
expect_status 201 "upload the fine-tuned copy"
req GET /v1/models/mnist/versions/1/diff/2
expect_status 200 "diff"
expect_jq '"\(.a)|\(.b)"' "1|2" "diff a/b"
expect_jq '[.layers[]|"\(.name):\(.status)"]|join(",")' "conv2d_1:identical,conv2d_2:identical,dense_1:identical,dense_2:changed,dense_3:identical" "only dense_2 changed"
check "relative_l2 and max_abs_diff equal numpy's" $PY - "$K2W" "$BODY" <<'EOF'
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); d = [l for l in json.loads(sys.argv[2])["layers"] if l["name"] == "dense_2"][0]
g = f["dense_2"]; a = [np.asarray(g[n.decode()], dtype=np.float64).ravel() for n in g.attrs["weight_names"]]
b = [a[0] + 1.0] + a[1:]
diff = np.concatenate([y - x for x, y in zip(a, b)]); na = np.linalg.norm(np.concatenate(a))
sys.exit(0 if abs(d["relative_l2"] - np.linalg.norm(diff) / na) < 1e-5 and abs(d["max_abs_diff"] - 1.0) < 1e-6 else 1)
EOF

# --- Keras 3 upload: partial set and conversion to keras2 -----------------------------
req POST "/v1/architectures?name=k3" --data-binary @"$K3J"
A3=$(printf '%s' "$BODY" | jq -r .id)
req POST /v1/models -d "{\"name\":\"k3\",\"architecture\":\"$A3\"}"
req POST "/v1/models/k3/versions" -H 'Content-Type: application/x-hdf5' --data-binary @"$K3W"
expect_status 201 "upload keras3 weights"
# ?format= naming the upload's own layout converts nothing: the exact bytes,
# the optimizer state Keras 3 saved with the weights included
get_file "/v1/models/k3/versions/1/weights?format=keras3" "$TEST_DIR/k3same.weights.h5"
check "keras3 file asked as keras3: the uploaded bytes" cmp -s "$TEST_DIR/k3same.weights.h5" "$K3W"
check "keras3 file asked as keras3: the upload's ETag" [ "$(header ETag)" = "\"$(jq -r .digest <<<"$(curl -s "$BASE/v1/models/k3/versions/1")")\"" ]
get_file "/v1/models/k3/versions/1/weights?layers=conv2d,dense" "$TEST_DIR/k3p.weights.h5"
check "keras3 partial: layers/<name>/vars equal" $CHECK keras3 "$TEST_DIR/k3p.weights.h5" "$K3W" conv2d,dense
expect_header Content-Disposition 'attachment; filename="k3-v1-partial.weights.h5"' "keras3 disposition"
get_file "/v1/models/k3/versions/1/weights?format=keras2&exclude=dense_1" "$TEST_DIR/k3to2.h5"
[ "$STATUS" = 200 ] && ok || bad "keras3 -> keras2: status $STATUS"
check "keras3 -> keras2" $CHECK k3tok2 "$TEST_DIR/k3to2.h5" "$K3W" conv2d=conv2d,max_pooling2d=max_pooling2d,conv2d_1=conv2d_1,max_pooling2d_1=max_pooling2d_1,flatten=flatten,dense=dense

# --- keras2 -> keras3 (names from the architecture's classes) ----------------------
get_file "/v1/models/mnist/versions/1/weights?format=keras3&layers=conv2d_1,conv2d_2,dense_1,dense_2,dense_3" "$TEST_DIR/k2to3.weights.h5"
[ "$STATUS" = 200 ] && ok || bad "keras2 -> keras3: status $STATUS"
check "keras2 -> keras3: class-derived group names" $CHECK k2tok3 "$TEST_DIR/k2to3.weights.h5" "$K2W" conv2d_1=conv2d,conv2d_2=conv2d_1,dense_1=dense,dense_2=dense_1,dense_3=dense_2
# and back: keras3 -> keras2 of what we wrote gives the original layer names
req POST /v1/models -d "{\"name\":\"k2as3\",\"architecture\":\"$ARCH\"}"
req POST "/v1/models/k2as3/versions" -H 'Content-Type: application/x-hdf5' --data-binary @"$TEST_DIR/k2to3.weights.h5"
expect_status 201 "the converted keras3 file validates against the Keras 2 architecture"
get_file "/v1/models/k2as3/versions/1/weights?format=keras2&layers=conv2d_1,conv2d_2,dense_1,dense_2,dense_3" "$TEST_DIR/back.h5"
check "keras2 -> keras3 -> keras2: datasets equal" $CHECK k3tok2 "$TEST_DIR/back.h5" "$TEST_DIR/k2to3.weights.h5" conv2d_1=conv2d,conv2d_2=conv2d_1,dense_1=dense,dense_2=dense_1,dense_3=dense_2

# --- a model without an architecture cannot convert -----------------------------------
req POST /v1/models -d '{"name":"bare"}'
req POST "/v1/models/bare/versions" -H 'Content-Type: application/x-hdf5' --data-binary @"$K2W"
req GET "/v1/models/bare/versions/1/weights?format=keras3"
expect_error 400 bad_request "conversion without an architecture"
get_file "/v1/models/bare/versions/1/weights?layers=dense_3" "$TEST_DIR/bare.h5"
check "no architecture: partial set still works" $CHECK legacy "$TEST_DIR/bare.h5" "$K2W" dense_3
req GET /v1/models/bare/versions/1/layers
expect_jq '.items[]|select(.name=="dense_3")|"\(.class)|\(.weights[0].name)"' "null|kernel" "layers without architecture: class null"

finish
