#!/bin/sh
# tests/fuzz/build.sh — builds the libFuzzer targets with clang directly (no
# CMake): every strata source a target needs is compiled with ASan + UBSan
# and coverage instrumentation into tests/fuzz/out/.
#
#   tests/fuzz/build.sh [TARGET...]      default: all targets
#   env: CC (default clang), FUZZ_OUT (default tests/fuzz/out), JOBS (default 2)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/fuzz
OUT=${FUZZ_OUT:-$HERE/out}
CC=${CC:-clang}
JOBS=${JOBS:-2}
ALL="fuzz_summary_json fuzz_h5_summary fuzz_arch fuzz_route fuzz_multipart"
TARGETS=${*:-$ALL}

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=gnu11 -D_GNU_SOURCE -DSTRATA_SANITIZED=1 $SAN -fsanitize=fuzzer-no-link
        -Wall -Wextra -Wno-unused-parameter
        -I$ROOT/engine -I$ROOT/server -I$ROOT/storage
        $(pkg-config --cflags hdf5 jansson openblas libcrypto libmicrohttpd sqlite3)"
LDFLAGS="-fsanitize=fuzzer $SAN"
LIBS_ENGINE="$(pkg-config --libs hdf5 jansson openblas libcrypto) -lm -lpthread"

mkdir -p "$OUT/obj/engine" "$OUT/obj/route"

# Compile SRC into OBJ when OBJ is missing or older than SRC or any header
# of its folder (headers are few; this keeps rebuilds cheap and correct).
compile() {
    src=$1 obj=$2
    if [ -f "$obj" ] && [ "$obj" -nt "$src" ]; then
        newer=$(find "$(dirname "$src")" "$HERE" -maxdepth 1 -name '*.h' -newer "$obj" | head -n 1)
        [ -z "$newer" ] && return 0
    fi
    echo "  CC $(echo "$src" | sed "s|$ROOT/||")"
    # shellcheck disable=SC2086
    $CC $CFLAGS -c "$src" -o "$obj"
}

need_engine=0
for t in $TARGETS; do
    case $t in fuzz_summary_json|fuzz_h5_summary|fuzz_arch) need_engine=1 ;; esac
done

if [ $need_engine = 1 ]; then
    # engine/*.c in parallel; one archive so a target pulls only what it uses
    export CC CFLAGS ROOT HERE
    ls "$ROOT"/engine/*.c | JOBS=$JOBS xargs -P "$JOBS" -I{} sh -c '
        src={}; obj='"$OUT"'/obj/engine/$(basename "$src" .c).o
        if [ -f "$obj" ] && [ "$obj" -nt "$src" ] &&
           [ -z "$(find "$ROOT/engine" -maxdepth 1 -name "*.h" -newer "$obj" | head -n 1)" ]; then exit 0; fi
        echo "  CC engine/$(basename "$src")"
        $CC $CFLAGS -c "$src" -o "$obj"'
    # drop objects whose source is gone
    for o in "$OUT"/obj/engine/*.o; do
        [ -f "$ROOT/engine/$(basename "$o" .o).c" ] || rm -f "$o"
    done
    rm -f "$OUT/libengine.a"
    ar rcs "$OUT/libengine.a" "$OUT"/obj/engine/*.o
fi

for t in $TARGETS; do
    echo "  TARGET $t"
    case $t in
    fuzz_summary_json|fuzz_h5_summary|fuzz_arch)
        compile "$HERE/$t.c" "$OUT/obj/$t.o"
        # shellcheck disable=SC2086
        $CC $LDFLAGS "$OUT/obj/$t.o" "$OUT/libengine.a" $LIBS_ENGINE -o "$OUT/$t"
        ;;
    fuzz_route)
        # routes.c names every handler; only the matcher runs here, so the
        # handlers are stubs generated from the table itself (new routes need
        # no edit here).
        stubs=$OUT/obj/route/route_stubs.c
        {
            echo '#include <stdlib.h>'
            echo '#include "routes.h"'
            grep -o 'srv_h_[A-Za-z0-9_]*' "$ROOT/server/routes.c" | sort -u |
                sed 's/.*/void &(srv_req *r) { (void)r; abort(); }/'
        } > "$stubs.new"
        cmp -s "$stubs.new" "$stubs" 2>/dev/null && rm "$stubs.new" || mv "$stubs.new" "$stubs"
        compile "$stubs" "$OUT/obj/route/route_stubs.o"
        compile "$ROOT/server/routes.c" "$OUT/obj/route/routes.o"
        compile "$ROOT/storage/util.c" "$OUT/obj/route/util.o"
        compile "$HERE/$t.c" "$OUT/obj/$t.o"
        # shellcheck disable=SC2086
        $CC $LDFLAGS "$OUT/obj/$t.o" "$OUT"/obj/route/*.o \
            $(pkg-config --libs sqlite3 jansson libcrypto) -o "$OUT/$t"
        ;;
    fuzz_multipart)
        compile "$HERE/$t.c" "$OUT/obj/$t.o"
        # shellcheck disable=SC2086
        $CC $LDFLAGS "$OUT/obj/$t.o" $(pkg-config --libs libmicrohttpd) -lpthread -o "$OUT/$t"
        ;;
    *)
        echo "build.sh: unknown target '$t' (targets: $ALL)" >&2
        exit 2
        ;;
    esac
done
