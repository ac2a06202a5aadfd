#!/usr/bin/env bash
# Architectures and validated uploads through the server: every real Keras
# model JSON registers with the parameter count SOURCES.md states; each real
# weight file is accepted against its own architecture and refused against
# another with every problem listed; a NaN-poisoned copy is refused; nothing
# half-written; predict matches PyTorch (tests/golden).
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
PY=/usr/bin/python3
start_server

# name|model json|params (SOURCES.md "Total parameters")|input shape (the JSON's batch_input_shape)
while IFS='|' read -r name json params ishape; do
    req POST "/v1/architectures?name=$name" --data-binary @"$KERAS/$json"
    expect_status 201 "register $json"
    expect_jq '.params' "$params" "$json params"
    expect_jq '.input_shape|map(tostring)|join("x")' "$ishape" "$json input shape (its batch_input_shape)"
    expect_jq '(.id|test("^sha256:[0-9a-f]{64}$")) and .name == "'"$name"'"' true "$json id and name"
    id=$(printf '%s' "$BODY" | jq -r .id)
    eval "ARCH_${name//-/_}=$id"
    req POST "/v1/architectures" --data-binary @"$KERAS/$json"
    expect_status 200 "register $json again (idempotent)"
    expect_jq '.id' "$id" "same id"
done <<'LIST'
k2-mnist|k2_2.1.2_mnist_cnn.model.json|59933|28x28x1
k2-conv|k2_2.0.0_conv2d_dropout.model.json|1310|8x8x1
k2-bn|k2_2.0.6_cnn_bn_dropout.model.json|891|25x25x1
k3-mnist|k3_3.10.0_mnist_cnn.model.json|179926|28x28x1
LIST

req GET /v1/architectures
expect_jq '.items|length' 4 "four architectures listed"
req GET "/v1/architectures/$ARCH_k2_mnist"
expect_jq '.layers|map(.name)|join(",")' "conv2d_1,max_pooling2d_1,conv2d_2,max_pooling2d_2,dropout_1,flatten_1,dense_1,dense_2,dense_3" "layer names of the mnist architecture"
expect_jq '.layers[6].weights[0].shape|map(tostring)|join(",")' "375,128" "dense_1 kernel shape"

# Bad architectures: 422 naming the layer.
sed 's/"MaxPooling2D"/"NoSuchLayer2D"/' "$KERAS/k2_2.1.2_mnist_cnn.model.json" >"$TEST_DIR/bad.json"
req POST /v1/architectures --data-binary @"$TEST_DIR/bad.json"
expect_error 422 invalid_architecture "unknown layer class"
expect_jq '.error.details.layer' max_pooling2d_1 "names the layer"
req POST /v1/architectures -d '{"class_name":"Sequential","config":[{"class_name":"Dense","config":{"name":"d","units":-3,"batch_input_shape":[null,4]}}]}'
expect_error 422 invalid_architecture "negative units"
req POST /v1/architectures -d '[1,2,3]'
expect_error 400 bad_request "not an object"

# Models with an architecture (by id and inline).
req POST /v1/models -d "{\"name\":\"mnist\",\"architecture\":\"$ARCH_k2_mnist\",\"monitor\":{\"metric\":\"val_loss\",\"mode\":\"min\"}}"
expect_status 201 "model by architecture id"
req POST /v1/models -d "{\"name\":\"bn\",\"architecture\":$(cat "$KERAS/k2_2.0.6_cnn_bn_dropout.model.json")}"
expect_status 201 "model with an inline architecture"
req GET /v1/models/bn
expect_jq '.architecture.id' "$ARCH_k2_bn" "inline architecture stored under its id"
for n in conv k3; do
    a=ARCH_$( [ $n = conv ] && echo k2_conv || echo k3_mnist )
    req POST /v1/models -d "{\"name\":\"$n\",\"architecture\":\"${!a}\"}"
    expect_status 201 "model $n"
done

# Each real file against its own architecture: accepted, validated.
while IFS='|' read -r model file; do
    req POST "/v1/models/$model/versions" -H 'Content-Type: application/x-hdf5' -T "$KERAS/$file"
    expect_status 201 "$file accepted by $model"
    expect_jq '.validation.status' passed "$file validation passed"
    expect_jq '.validation.probe_output|length > 0 and all(type == "number")' true "$file probe output"
done <<'LIST'
mnist|k2_2.1.2_weights_mnist_cnn.h5
conv|k2_2.0.0_weights_conv2d_dropout.h5
bn|k2_2.0.6_weights_cnn_bn_dropout.h5
k3|k3_3.10.0_mnist_cnn.weights.h5
k3|k3_3.10.0_legacy_full_mnist_cnn.h5
LIST

# Weights of another model: 422 with every problem; nothing stored.
before=$(data_state)
req POST '/v1/models/mnist/versions?tag=prod' -H 'Content-Type: application/x-hdf5' -T "$KERAS/k2_2.0.0_weights_conv2d_dropout.h5"
expect_error 422 invalid_weights "conv weights into the mnist model"
expect_jq '[.error.details.problems[] | select(.layer == "dense_1" and .weight == "kernel")][0] | "\(.expected)|\(.found)"' "[375,128]|[128,10]" "dense_1 kernel problem"
expect_jq '[.error.details.problems[] | select(.problem == "missing") | .layer] | sort | join(",")' "conv2d_2,dense_2,dense_3" "missing layers"
req POST '/v1/models/k3/versions' -H 'Content-Type: application/x-hdf5' -T "$KERAS/k3_3.11.3_mnist_cnn.keras"
expect_error 422 invalid_weights "another Keras 3 model's archive"
check "refusals stored nothing ($(data_state))" test "$(data_state)" = "$before"
req GET /v1/models/mnist
expect_jq '.versions' 1 "mnist still has one version"

# A NaN in a kernel is refused.
$PY - "$KERAS/k2_2.1.2_weights_mnist_cnn.h5" "$TEST_DIR/nan.h5" <<'PYEOF'
import shutil, sys, h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    d = f["dense_2/dense_2/kernel:0"]
    a = d[...]; a[3, 7] = np.nan; d[...] = a
PYEOF
req POST /v1/models/mnist/versions -H 'Content-Type: application/x-hdf5' -T "$TEST_DIR/nan.h5"
expect_error 422 invalid_weights "NaN in a kernel"
expect_jq '[.error.details.problems[] | select(.layer == "dense_2" and .problem == "nan")] | length' 1 "names the NaN layer"

# predict on the accepted mnist version matches PyTorch on the same input.
case_dir=$STRATA_TESTS/golden/fixture_k2_mnist_cnn
$PY "$(dirname "$0")/golden_predict.py" request "$case_dir" >"$TEST_DIR/predict.json"
req POST /v1/models/mnist/versions/latest/predict -H 'Content-Type: application/json' --data-binary @"$TEST_DIR/predict.json"
expect_status 200 "predict"
out=$(printf '%s' "$BODY" | $PY "$(dirname "$0")/golden_predict.py" compare "$case_dir")
check "predict matches PyTorch ($out)" grep -q '^ok' <<<"$out"
req POST /v1/models/mnist/versions/1/predict -d '{"inputs":[[[1,2],[3,4]]]}'
expect_error 400 bad_request "predict with the wrong input shape"
req POST /v1/models/mnist/versions/1/predict -d '{"inputs":[]}'
expect_error 400 bad_request "predict without inputs"

finish
