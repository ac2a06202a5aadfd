"""bench/client.py — the Python client's two targets of issue #13, as ratios
against references measured in the same run:

1. reg.upload of a 128 MiB checkpoint vs `curl -T` of the same file to the
   same server (best of 3 each; target >= 0.9x), and the client's peak RSS
   for a 32 MiB and a 128 MiB file (target: flat in file size).
2. fit() wall time with StrataCheckpoint (every epoch) against a server
   that takes 2 s per request — uploads far slower than an epoch — vs fit()
   with no callback (target: <= 5 % more).

Run: build/venv/bin/python bench/client.py  (after scripts/test or
scripts/venv; uses build/strata).
"""
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from conftest import Server  # noqa: E402


def h5_file(path, mib):
    import h5py
    import numpy as np
    n = int(mib * (1 << 20) / 4 / 4096)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g.create_dataset("dense/kernel:0", data=np.random.default_rng(0).random((n, 4096),
                                                                                dtype=np.float32))
    return path


def best_of(n, fn):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def child_rss(url, path):
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec from the parent
    code = ("import strata,sys; strata.Registry(sys.argv[1]).upload('m', sys.argv[2]);"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code, url, path], check=True,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "clients", "python")))
    return int(out.stdout.strip()) / 1024


def upload_bench(tmp):
    import strata
    s = Server().start()
    try:
        reg = strata.Registry(s.url)
        reg.create_model("m")
        big = h5_file(os.path.join(tmp, "big.h5"), 128)
        small = h5_file(os.path.join(tmp, "small.h5"), 32)
        url = f"{s.url}/v1/models/m/versions"
        curl = best_of(3, lambda: subprocess.run(
            ["curl", "-sS", "-f", "-o", "/dev/null", "-H", "Content-Type: application/x-hdf5",
             "-T", big, "-X", "POST", url], check=True))
        ours = best_of(3, lambda: reg.upload("m", big))
        size = os.path.getsize(big) / (1 << 20)
        print(f"upload {size:.0f} MiB: curl -T {curl:.3f} s, reg.upload {ours:.3f} s, "
              f"speed ratio (curl time / ours) {curl / ours:.2f}x (target >= 0.9)")
        r32, r128 = child_rss(s.url, small), child_rss(s.url, big)
        print(f"client peak RSS: 32 MiB file {r32:.1f} MiB, 128 MiB file {r128:.1f} MiB, "
              f"ratio {r128 / r32:.2f} (flat = 1.0)")
    finally:
        s.stop()


class Slow(http.server.BaseHTTPRequestHandler):
    """Answers every request after 2 s (reads the body first)."""
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        time.sleep(2)
        body = b'{"version": 1}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *a):
        pass


def slow_server():
    """The slow server in its own process (in ours it would share the GIL)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


def callback_bench(tmp):
    import numpy as np
    import keras
    import strata
    from strata.keras import StrataCheckpoint
    slow = subprocess.Popen([sys.executable, __file__, "--slow-server"], stdout=subprocess.PIPE,
                            text=True)
    reg = strata.Registry(f"http://127.0.0.1:{slow.stdout.readline().strip()}")
    rng = np.random.default_rng(0)
    x = rng.random((2048, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 2048)

    def build():
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(x[:64], y[:64], epochs=1, verbose=0)        # compile the graph outside the timing
        return m

    def run(cbs):
        m = build()
        t0 = time.perf_counter()
        m.fit(x, y, epochs=10, batch_size=64, verbose=0, callbacks=cbs)
        return time.perf_counter() - t0

    base, times = [], []
    for i in range(3):                       # interleaved, best of 3 each
        base.append(run([]))
        cb = StrataCheckpoint(reg, "m", run=f"b{i}", spool_dir=os.path.join(tmp, f"spool{i}"),
                              drain_timeout=0)
        times.append(run([cb]))
    base, ours = min(base), min(times)
    print(f"fit 10 epochs, server 2 s per request: no callback {base:.2f} s, StrataCheckpoint "
          f"{ours:.2f} s, overhead {100 * (ours / base - 1):+.1f} % (target <= 5 %)")
    slow.kill()


if __name__ == "__main__":
    if sys.argv[1:] == ["--slow-server"]:
        slow_server()
        sys.exit(0)
    tmp = tempfile.mkdtemp(prefix="strata-bench-client-")
    try:
        upload_bench(tmp)
        callback_bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
