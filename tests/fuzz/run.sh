#!/bin/sh
# tests/fuzz/run.sh — build the fuzz targets, run each for SECONDS on its
# seed corpus, print one line per target, exit non-zero on any crash of ours.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     SECONDS default 20
#
# env:
#   FUZZ_H5_SECONDS   fuzz_h5_summary's time (default: SECONDS, at most 10:
#                     libhdf5 is slow and crashes by itself, see README)
#   FUZZ_NOBUILD=1    use the binaries already in tests/fuzz/out
#   FUZZ_KEEP=1       keep the work corpora between runs (default: fresh)
#   STRATA_FIXTURES   shared fixtures (default: <repo>/../shared/fixtures)
#   NICE              niceness of the fuzzers (default 10)
#
# Corpora: libFuzzer writes new inputs into its FIRST directory only; that
# is out/work/<target>, never a committed directory. The committed seeds
# (corpus/<name>/) and the fixture directories are read-only inputs.
# Crash artifacts go to out/artifacts/<target>-crash-<sha1>.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/fuzz
OUT=${FUZZ_OUT:-$HERE/out}
SECONDS_EACH=${1:-20}
[ $# -gt 0 ] && shift
TARGETS=${*:-fuzz_summary_json fuzz_h5_summary fuzz_arch fuzz_route fuzz_multipart}
FIX=${STRATA_FIXTURES:-$ROOT/../shared/fixtures}
NICE=${NICE:-10}
H5_SECONDS=${FUZZ_H5_SECONDS:-$([ "$SECONDS_EACH" -gt 10 ] && echo 10 || echo "$SECONDS_EACH")}

if [ "${FUZZ_NOBUILD:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    FUZZ_OUT=$OUT "$HERE/build.sh" $TARGETS || { echo "run.sh: build failed" >&2; exit 2; }
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}

mkdir -p "$OUT/artifacts" "$OUT/logs" "$OUT/seeds"

# Seeds that live outside tests/fuzz/ are linked into out/seeds/<name>/
# (libFuzzer takes directories; these dirs mix file kinds).
seed_dir() {   # name, files...
    d=$OUT/seeds/$1
    shift
    rm -rf "$d"
    mkdir -p "$d"
    for f in "$@"; do
        [ -f "$f" ] && ln -sf "$f" "$d/$(echo "$f" | sed "s|^$ROOT/||; s|^$FIX/||; s|/|_|g")"
    done
    echo "$d"
}

# Classify one crash artifact of fuzz_h5_summary by re-running it:
# prints "ours" when the faulting frame (or, for a bad access to the heap,
# the frame that allocated the block) is strata code, "libhdf5" when it is
# inside libhdf5, "unknown" otherwise.
classify() {   # binary, artifact
    "$1" -runs=1 "$2" >"$2.log" 2>&1
    if ! grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\|libFuzzer\)\|runtime error:' "$2.log"; then
        echo unreproducible
        return
    fi
    awk -v root="$ROOT" '
    # strata frames carry a source position under the repo; libhdf5 frames
    # name its shared object; frames of the fuzz binary without a source
    # position are the sanitizer/libFuzzer runtime, skipped like libc.
    function frame_owner(line) {
        if (index(line, root "/engine/") || index(line, root "/server/") ||
            index(line, root "/storage/") || index(line, root "/tests/fuzz/fuzz_")) {
            if (line ~ /\.[ch]:[0-9]/) return "ours"   # incl. an invariant abort() of the harness
            return ""
        }
        if (line ~ /libhdf5/) return "libhdf5"
        if (line ~ /libc\.so|libc_start|csu\/|nptl\/|stdlib\/|string\/|signal\/|malloc\/|fuzzer::|__sanitizer|__asan|__lsan|__ubsan|__interceptor/) return ""
        if (index(line, "/tests/fuzz/out/")) return ""
        return "other"
    }
    /^ *#[0-9]+ / {
        o = frame_owner($0)
        if (o == "") next
        if (section == "alloc" && alloc == "") alloc = o
        if (section == "" && top == "") top = o
        next
    }
    /allocated by thread|allocated from:/ { section = "alloc"; next }
    /freed by thread|previously allocated/ { section = "other"; next }
    /^SUMMARY/ { section = "done" }
    END {
        if (alloc == "ours" || top == "ours") print "ours"
        else if (top == "libhdf5" || (top == "" && alloc == "libhdf5")) print "libhdf5"
        else print "unknown"
    }' "$2.log"
}

fail=0
for t in $TARGETS; do
    name=${t#fuzz_}
    work=$OUT/work/$t
    [ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$work"
    mkdir -p "$work" "$HERE/corpus/$name"
    secs=$SECONDS_EACH
    opts="-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
    dirs="$HERE/corpus/$name"
    case $t in
    fuzz_h5_summary)
        secs=$H5_SECONDS
        # the repo's own small HDF5 cases, the Keras fixtures, the CVE corpus
        dirs="$dirs $(seed_dir h5 "$ROOT"/tests/data/h5/*.h5 "$ROOT"/tests/data/h5/*.keras \
                      "$ROOT"/tests/data/h5/*.bin "$FIX"/keras/*.h5 "$FIX"/keras/*.keras)"
        [ -d "$FIX/hdf5-cve" ] && dirs="$dirs $FIX/hdf5-cve"
        # -fork: a crash inside libhdf5 (expected, see README) ends one child,
        # not the run; every crash artifact is classified below.
        opts="-timeout=3 -rss_limit_mb=2048 -print_final_stats=1 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_len=1048576"
        ;;
    fuzz_arch)
        dirs="$dirs $(seed_dir arch "$FIX"/keras/*.model.json "$ROOT"/tests/golden/*/model.json \
                      "$ROOT"/tests/data/arch/*/model.json)"
        opts="$opts -max_len=65536"
        ;;
    fuzz_summary_json) opts="$opts -max_len=65536" ;;
    fuzz_multipart) opts="$opts -max_len=8192" ;;
    fuzz_route) opts="$opts -max_len=512" ;;
    esac
    [ -f "$HERE/$name.dict" ] && opts="$opts -dict=$HERE/$name.dict"
    log=$OUT/logs/$t.log
    mark=$OUT/logs/$t.mark
    touch "$mark"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    nice -n "$NICE" "$OUT/$t" $opts -max_total_time="$secs" \
        -artifact_prefix="$OUT/artifacts/$t-" "$work" $dirs >"$log" 2>&1
    rc=$?
    t1=$(date +%s)
    # executions: plain mode prints stat::number_of_executed_units; fork mode
    # prints "#N: cov: ..." progress lines from the parent.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\):* .*/\1/p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    result=ok
    if [ "$t" = fuzz_h5_summary ]; then
        ours=0 lib=0 unk=0 unrep=0
        for a in $(find "$OUT/artifacts" \( -name "$t-crash-*" -o -name "$t-leak-*" \) ! -name '*.log' -newer "$mark"); do
            case $(classify "$OUT/$t" "$a") in
            ours) ours=$((ours + 1)); echo "  OURS: $a (stack in $a.log)" >&2 ;;
            libhdf5) lib=$((lib + 1)) ;;
            unreproducible) unrep=$((unrep + 1)) ;;
            *) unk=$((unk + 1)); echo "  UNCLASSIFIED: $a (stack in $a.log)" >&2 ;;
            esac
        done
        result="ok (libhdf5 crashes: $lib, not reproducible: $unrep)"
        [ $((ours + unk)) -gt 0 ] && { result="CRASH (ours: $ours, unclassified: $unk, libhdf5: $lib)"; fail=1; }
        [ $rc -ne 0 ] && [ $((ours + unk + lib)) -eq 0 ] && { result="ERROR rc=$rc (see $log)"; fail=1; }
    elif [ $rc -ne 0 ]; then
        art=$(find "$OUT/artifacts" -name "$t-*" -newer "$mark" | head -n 1)
        result="CRASH rc=$rc artifact=$art (log: $log)"
        fail=1
    fi
    printf '%-18s %4ss  executions=%-9s cov=%-5s %s\n' "$t" "$((t1 - t0))" "${execs:-?}" "${cov:-?}" "$result"
done
exit $fail
