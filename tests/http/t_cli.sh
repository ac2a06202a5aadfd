#!/usr/bin/env bash
# The command line: help from the options table, unknown commands and flags
# (exit 2 with a hint), environment variables, migrate, inspect.
. "$(dirname "$0")/lib.sh"
S=$STRATA_BIN

out=$("$S" --help); rc=$?
check "strata --help exits 0" test "$rc" -eq 0
for c in serve migrate verify gc inspect token; do check "--help lists $c" grep -q "^  $c " <<<"$out"; done
out=$("$S" serve --help)
check "serve --help lists --listen with its env" grep -q -- '--listen V.*STRATA_LISTEN' <<<"$out"
check "serve --help shows defaults" grep -q 'default: 127.0.0.1:8080' <<<"$out"
out=$("$S" frobnicate 2>&1); rc=$?
check "unknown command exits 2 (rc $rc)" test "$rc" -eq 2
check "unknown command hints" grep -q 'strata --help' <<<"$out"
out=$("$S" serve --bogus 2>&1); rc=$?
check "unknown flag exits 2 (rc $rc)" test "$rc" -eq 2
check "unknown flag hints" grep -q "unknown option '--bogus'" <<<"$out"
out=$("$S" gc --listen x 2>&1); rc=$?
check "a flag of another command is unknown here (rc $rc)" test "$rc" -eq 2
out=$("$S" serve --max-body lots 2>&1); rc=$?
check "bad size exits 2 (rc $rc)" test "$rc" -eq 2

out=$(STRATA_DATA="$TEST_DIR/envdata" "$S" migrate); rc=$?
check "migrate via STRATA_DATA (rc $rc: $out)" test "$rc" -eq 0 -a -f "$TEST_DIR/envdata/strata.db"
check "migrate reports applied migrations" grep -q 'applied now' <<<"$out"
out=$("$S" migrate --data "$TEST_DIR/envdata")
check "second migrate applies none ($out)" grep -q '(0 applied now)' <<<"$out"

if have_fixtures; then
    out=$("$S" inspect "$KERAS/k2_2.1.2_weights_mnist_cnn.h5"); rc=$?
    check "inspect exits 0" test "$rc" -eq 0
    check "inspect gives the params SOURCES.md states" grep -q '^params: 59933$' <<<"$out"
    check "inspect gives the format" grep -q '^format: keras2-weights$' <<<"$out"
    out=$("$S" inspect "$KERAS/k2_2.1.2_weights_mnist_cnn.h5" --architecture "$KERAS/k2_2.1.2_mnist_cnn.model.json"); rc=$?
    check "inspect with the matching architecture passes (rc $rc)" test "$rc" -eq 0
    out=$("$S" inspect "$KERAS/tfk_2.15.0_weights_lenet.h5" --architecture "$KERAS/k2_2.1.2_mnist_cnn.model.json"); rc=$?
    check "inspect with another architecture fails (rc $rc)" test "$rc" -ne 0
    check "and lists the problems" grep -q '"problem": "missing"' <<<"$out"
fi
printf 'nope' >"$TEST_DIR/x.h5"
out=$("$S" inspect "$TEST_DIR/x.h5" 2>&1); rc=$?
check "inspect of a non-HDF5 file fails with a reason (rc $rc)" bash -c "test $rc -ne 0 && grep -qi 'hdf5' <<<'$out'"

finish
