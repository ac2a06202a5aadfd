#!/usr/bin/env bash
# Every real Keras fixture (../shared/fixtures/keras, SOURCES.md) uploaded to a
# model whose architecture is the file's own: its companion model JSON, the
# model_config embedded in a full-model file, or the .keras archive's
# config.json. Each is accepted, or refused with the documented reason
# (README, "Keras files: accepted and refused").
. "$(dirname "$0")/lib.sh"
have_fixtures || { echo "0 passed, 0 failed, 1 skipped"; exit 0; }
PY=/usr/bin/python3
start_server
n=0

# Pull the architecture out of a full-model .h5 (root attr model_config) or a .keras zip.
embedded_config() {
    $PY - "$1" <<'PYEOF'
import sys, zipfile, h5py
p = sys.argv[1]
if p.endswith(".keras"):
    print(zipfile.ZipFile(p).read("config.json").decode())
else:
    c = h5py.File(p, "r").attrs["model_config"]
    print(c.decode() if isinstance(c, bytes) else c)
PYEOF
}

# weights | architecture source | expected: 201, or 422:<error code>:<text the message must contain>
while IFS='|' read -r weights arch expect; do
    case "$arch" in
        embedded) embedded_config "$KERAS/$weights" >"$TEST_DIR/arch.json" ;;
        embedded-from-full) embedded_config "$KERAS/k1_1.1.2_full_cnn_tf.h5" >"$TEST_DIR/arch.json" ;;
        golden:*) cp "$STRATA_TESTS/golden/${arch#golden:}/model.json" "$TEST_DIR/arch.json" ;;
        *) cp "$KERAS/$arch" "$TEST_DIR/arch.json" ;;
    esac
    name=m$((++n))
    req POST /v1/architectures --data-binary @"$TEST_DIR/arch.json"
    if [ "${expect%%:*}" = 201 ]; then
        check "$weights: architecture registers (status $STATUS: ${BODY:0:200})" test "$STATUS" = 201 -o "$STATUS" = 200
        id=$(printf '%s' "$BODY" | jq -r .id)
        req POST /v1/models -d "{\"name\":\"$name\",\"architecture\":\"$id\"}"
        req POST "/v1/models/$name/versions" -H 'Content-Type: application/x-hdf5' -T "$KERAS/$weights"
        expect_status 201 "$weights accepted against $arch"
        expect_jq '.validation.status' passed "$weights validation"
    else
        IFS=: read -r code ecode text <<<"$expect"
        expect_error "$code" "$ecode" "$weights refused"
        check "$weights refusal says '$text' (${BODY:0:300})" grep -q "$text" <<<"$BODY"
    fi
done <<'LIST'
k1_1.0.4_weights_cifar10_cnn_th.h5|k1_1.0.4_cifar10_cnn_th.model.json|201
k1_1.1.2_full_cnn_tf.h5|embedded|201
k1_1.1.2_weights_cnn_tf.h5|embedded-from-full|201
k1_1.2.2_full_dense_bn_conv2d_tf.h5|embedded|201
k2_2.0.0_weights_conv2d_dropout.h5|k2_2.0.0_conv2d_dropout.model.json|201
k2_2.0.6_weights_cnn_bn_dropout.h5|k2_2.0.6_cnn_bn_dropout.model.json|201
k2_2.1.2_weights_mnist_cnn.h5|k2_2.1.2_mnist_cnn.model.json|201
k2_2.1.3_full_cnn_bn.h5|embedded|201
k3_3.10.0_legacy_full_mnist_cnn.h5|embedded|201
k3_3.10.0_mnist_cnn.weights.h5|k3_3.10.0_mnist_cnn.model.json|201
k3_3.11.3_mnist_cnn.keras|embedded|201
tfk_2.15.0_weights_lenet.h5|golden:fixture_tfk_lenet|201
tfk_2.2.4-tf_full_depthwise_cnn.h5|embedded|201
tfk_2.4.0_full_conv1d_adam.h5|embedded|422:invalid_architecture:embedding
LIST
finish
