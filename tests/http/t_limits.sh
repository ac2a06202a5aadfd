#!/usr/bin/env bash
# Every limit of the server, each with its default (strata serve --help,
# server/http.c, engine/engine.h) and a check that it holds:
#   --max-body (8G)          413 from Content-Length, before any body byte is read
#   --max-json (4M)          413 from Content-Length, and for a chunked JSON body
#   JSON depth (64)          400 (SRV_MAX_JSON_DEPTH, server/http.c)
#   header + URL (1 MiB)     431 / 414 from libmicrohttpd (its per-connection
#                            memory, CONNECTION_MEMORY_LIMIT in server/http.c)
#   --max-conns-per-ip (128) connections past it are closed unanswered
#   --max-conns (1000)       the same, in total
#   --conn-timeout (60 s)    an idle connection is closed
#   body rate (1 KiB/s)      a body slower than SRV_MIN_BODY_RATE once it has
#                            taken longer than --conn-timeout is cut off (slowloris)
#   chunked + Content-Length 400
#   ENG_MAX_LAYERS (4096), ENG_MAX_RANK (8), ENG_MAX_ELEMENTS (2^32) per file: 422
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
RAW=$TEST_DIR/raw.py
cat >"$RAW" <<'EOF'
# raw.py MODE PORT ...: small raw-socket clients the test needs (curl cannot
# hold idle connections or trickle a body).
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s

def answer(s, limit=10):
    s.settimeout(limit)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data and mode != "idle":
                head, _, rest = data.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    return data

if mode == "bodyless":
    # headers announcing a huge body, then nothing: the answer must come anyway
    path, length = sys.argv[3], sys.argv[4]
    s = conn()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {sys.argv[5]}\r\n"
              f"Content-Length: {length}\r\n\r\n".encode())
    t = time.time()
    a = answer(s, 5)
    print(a.split(b"\r\n")[0].decode(errors="replace"), f"{time.time() - t:.2f}")
elif mode == "big":
    # a request line or a header of N bytes
    what, n = sys.argv[3], int(sys.argv[4])
    s = conn()
    if what == "url":
        req = b"GET /healthz?x=" + b"a" * n + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    else:
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * n + b"\r\n\r\n"
    try:
        s.sendall(req)
    except (BrokenPipeError, ConnectionResetError):
        pass
    a = answer(s)
    print(a.split(b"\r\n")[0].decode(errors="replace") or "closed")
elif mode == "conns":
    # open N idle connections, then ask /healthz on each: how many answer?
    n = int(sys.argv[3])
    socks = [conn() for _ in range(n)]
    time.sleep(0.5)
    answered = 0
    for s in socks:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if answer(s, 2).startswith(b"HTTP/1.1 200"):
                answered += 1
        except OSError:
            pass
    print(answered)
elif mode == "idle":
    # an idle connection: seconds until the server closes it
    s = conn()
    if len(sys.argv) > 3:      # headers of an upload, then no body
        s.sendall(f"POST {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-hdf5\r\n"
                  "Content-Length: 100000\r\n\r\n".encode())
    t = time.time()
    answer(s, 30)
    print(f"{time.time() - t:.1f}")
elif mode == "trickle":
    # slowloris: an upload's headers, then one byte every 0.5 s (never idle
    # long enough for the idle timeout): seconds until the server cuts it off
    s = conn()
    s.sendall(f"POST {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-hdf5\r\n"
              "Content-Length: 100000\r\n\r\n".encode())
    t = time.time()
    try:
        while time.time() - t < 30:
            s.sendall(b"x")
            time.sleep(0.5)
    except OSError:
        pass
    print(f"{time.time() - t:.1f}")
elif mode == "both":
    # chunked and Content-Length together
    s = conn()
    s.sendall(f"POST {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-hdf5\r\n"
              "Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              "5\r\nhello\r\n0\r\n\r\n".encode())
    a = answer(s)
    print(a.split(b"\r\n")[0].decode(errors="replace") or "closed")
    print(a.partition(b"\r\n\r\n")[2].decode(errors="replace"))
EOF
raw() { timeout 40 "$PY" "$RAW" "$1" "${BASE##*:}" "${@:2}"; }
metric() { curl -sS "$BASE/metrics" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }

# ---- body sizes ------------------------------------------------------------------
start_server --max-body 1M --max-json 1K
req POST /v1/models -d '{"name":"m"}'
expect_status 201 "create model"
in0=$(metric strata_bytes_in_total)
line=$(raw bodyless /v1/models/m/versions 100000000000 application/x-hdf5)
check "413 for a 100 GB Content-Length, answered without the body ($line)" \
    bash -c "[[ '$line' == 'HTTP/1.1 413'* ]] && awk '{exit !(\$NF < 3)}' <<<'$line'"
head -c 3000000 /dev/urandom >"$TEST_DIR/3m.bin"
req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' --data-binary @"$TEST_DIR/3m.bin"
expect_error 413 too_large "3 MB upload over --max-body 1M"
expect_jq '.error.details.limit' 1048576 "413 names the limit"
in1=$(metric strata_bytes_in_total)
check "the refused bodies were not read (bytes_in grew by $((in1 - in0)))" test $((in1 - in0)) -lt 100000
check "no temp file after 413s ($(data_state))" test "$(find "$DATA/tmp" -type f | wc -l)" -eq 0

line=$(raw bodyless /v1/models 2048 application/json)
check "413 for a JSON body of 2 KB over --max-json 1K, before the body ($line)" bash -c "[[ '$line' == 'HTTP/1.1 413'* ]]"
big=$(printf '{"name":"n","description":"%s"}' "$(head -c 2000 /dev/zero | tr '\0' a)")
req POST /v1/models -H 'Transfer-Encoding: chunked' --data-binary "$big"
expect_error 413 too_large "chunked JSON body over --max-json"
req GET /v1/models/n
expect_status 404 "nothing created by the refused JSON"

# ---- JSON depth (64) -----------------------------------------------------------------
deep() { printf '{"name":"d%s","description":"x","extra":' "$1"; printf '[%.0s' $(seq 1 "$1"); printf '%.0s]' $(seq 1 "$1"); printf '}'; }
stop_server
start_server --max-json 4M
req POST /v1/models --data-binary "$(deep 65)"
expect_error 400 bad_request "JSON nested 66 deep"
expect_jq '.error.details.limit' 64 "the depth limit is named"
req POST /v1/models --data-binary "$(deep 63)"
check "JSON nested 64 deep is parsed (status $STATUS: no depth error)" \
    bash -c "! grep -q 'levels deep' <<<'$BODY'"
printf '[%.0s' $(seq 1 200000) >"$TEST_DIR/deep.json"
req POST /v1/architectures --data-binary @"$TEST_DIR/deep.json"
expect_error 400 bad_request "200 000 open brackets"
req GET /healthz
expect_status 200 "server up after deep JSON"

# ---- header and URL sizes (libmicrohttpd: 1 MiB of connection memory) ------------
port=${BASE##*:}
check "a 100 KB header is accepted (under the 1 MiB limit): $(raw big header 100000)" \
    bash -c "[[ '$(raw big header 100000)' == 'HTTP/1.1 200'* ]]"
l=$(raw big header 2000000)
check "a 2 MB header: 431 ($l)" bash -c "[[ '$l' == 'HTTP/1.1 431'* ]]"
l=$(raw big url 2000000)
check "a 2 MB URL: 414 ($l)" bash -c "[[ '$l' == 'HTTP/1.1 414'* ]]"
req GET /healthz
expect_status 200 "server up after oversized headers and URL"

# ---- chunked + Content-Length -----------------------------------------------------------
out=$(raw both /v1/models/m/versions)
check "chunked and Content-Length together: 400 (${out%%$'\n'*})" bash -c "[[ '${out%%$'\n'*}' == 'HTTP/1.1 400'* ]]"
check "... with the contract's error body" grep -q '"code":"bad_request"' <<<"$out"
stop_server

# ---- connections per IP and in total --------------------------------------------------
start_server --max-conns-per-ip 4 --threads 2
n=$(raw conns 8)
check "8 connections from one IP with --max-conns-per-ip 4: 4 answered ($n)" test "$n" = 4
req GET /healthz
expect_status 200 "a new connection is served once the others closed"
stop_server
start_server --max-conns 4 --threads 1
n=$(raw conns 8)
check "8 connections with --max-conns 4: 4 answered ($n)" test "$n" = 4
req GET /healthz
expect_status 200 "served again after the flood"
stop_server

# ---- idle and slow connections ----------------------------------------------------------
start_server --conn-timeout 2
req POST /v1/models -d '{"name":"m"}'
t=$(raw idle)
check "an idle connection is closed after --conn-timeout 2 (${t}s)" awk "BEGIN{exit !($t >= 1.5 && $t <= 6)}"
t=$(raw idle /v1/models/m/versions)
check "an upload whose body never comes is closed after ~2 s (${t}s)" awk "BEGIN{exit !($t >= 1.5 && $t <= 6)}"
raw trickle /v1/models/m/versions >"$TEST_DIR/trickle.out" &
trickler=$!
sleep 1
s=$(date +%s%N)
req GET /healthz
ms=$(( ($(date +%s%N) - s) / 1000000 ))
check "another request answers quickly while a slowloris trickles (${ms} ms)" test "$STATUS" = 200 -a "$ms" -lt 1000
wait "$trickler"
t=$(cat "$TEST_DIR/trickle.out")
check "a body trickling at 2 bytes/s is cut off soon after --conn-timeout (${t}s)" awk "BEGIN{exit !($t >= 1.5 && $t <= 8)}"
check "the cut-off is logged" grep -q 'body slower than' "$TEST_DIR/server.log"
check "no temp file left by the slow uploads ($(data_state))" test "$(find "$DATA/tmp" -type f | wc -l)" -eq 0
req GET /v1/models/m
expect_jq '.versions' 0 "no version from the slow uploads"
# A normal upload is not affected by the rate floor.
if have_fixtures; then
    req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -T "$KERAS/k2_2.1.2_weights_mnist_cnn.h5"
    expect_status 201 "a normal upload is accepted with --conn-timeout 2"
fi

# ---- per-file engine bounds (ENG_MAX_* in engine/engine.h) -------------------------------
"$PY" - "$TEST_DIR" <<'EOF'
import sys, h5py, numpy as np
d = sys.argv[1]
def k2(path, shape, nlayers=1, groups=True):
    with h5py.File(path, "w") as f:
        names = [f"dense_{i}".encode() for i in range(nlayers)]
        f.attrs["layer_names"] = np.array(names)
        f.attrs["keras_version"] = b"2.1.2"
        f.attrs["backend"] = b"tensorflow"
        if groups:
            for n in names:
                g = f.create_group(n.decode())
                g.attrs["weight_names"] = np.array([n + b"/kernel:0"])
                g.create_dataset(n.decode() + "/kernel:0", shape=shape, dtype="f4")   # never written: tiny
k2(f"{d}/layers.h5", (1,), nlayers=4097, groups=False)      # ENG_MAX_LAYERS + 1
k2(f"{d}/rank.h5", (1,) * 9)                                # ENG_MAX_RANK + 1
k2(f"{d}/elements.h5", (1 << 17, 1 << 16))                  # 2^33 > ENG_MAX_ELEMENTS
EOF
for c in "layers:4097 entries, more than 4096" "rank:rank 9, more than 8" "elements:more than 4294967296 elements"; do
    f=${c%%:*} want=${c#*:}
    req POST /v1/models/m/versions -H 'Content-Type: application/x-hdf5' -T "$TEST_DIR/$f.h5"
    expect_error 422 invalid_weights "a file over the $f bound"
    check "the 422 names the $f limit ('$want' in: $(jq -r .error.message <<<"$BODY"))" grep -q "$want" <<<"$BODY"
done
check "tmp/ empty at the end ($(data_state))" test "$(find "$DATA/tmp" -type f | wc -l)" -eq 0
finish
