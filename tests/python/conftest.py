"""Shared fixtures of the Python client tests: the real `strata serve` on a
free port with a fresh data directory (restartable on the same port, so a
test can take the server away in the middle of fit()), and the Keras
fixture files of ../shared/fixtures/keras.

Environment (set by ctest): STRATA_BIN (the server binary), STRATA_FIXTURES.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STRATA_BIN = os.environ.get("STRATA_BIN", os.path.join(ROOT, "build", "strata"))
FIXTURES = os.environ.get("STRATA_FIXTURES",
                          os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))
KERAS_FIXTURES = os.path.join(FIXTURES, "keras")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One strata server process; start()/stop() keep port and data."""

    def __init__(self, extra=()):
        self.dir = tempfile.mkdtemp(prefix="strata-pytest-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = list(extra)
        self.proc = None
        self.exit_codes = []

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [STRATA_BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
             "--threads", "4", *self.extra],
            stdout=subprocess.PIPE, stderr=log)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            self.proc.wait(5)
            raise RuntimeError(f"strata did not start: {line!r}; log: {self.log()}")
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.exit_codes.append(self.proc.wait(60))
        self.proc.stdout.close()
        self.proc = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        self.stop()
        bad = [c for c in self.exit_codes if c != 0]
        shutil.rmtree(self.dir, ignore_errors=True)
        # Under ASan a leak or error makes the exit status non-zero.
        assert not bad, f"strata exited with {bad}"


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    log = s.log()
    try:
        s.close()
    except AssertionError:
        sys.stderr.write(log)
        raise


@pytest.fixture(scope="module")
def reg(server):
    import strata
    return strata.Registry(server.url)


@pytest.fixture(scope="session")
def keras_fixtures():
    """The folder of Keras-written fixtures; loudly skipped when absent."""
    if not os.path.isfile(os.path.join(KERAS_FIXTURES, "SOURCES.md")):
        msg = (f"SKIPPED (loudly): Keras fixtures not found at {KERAS_FIXTURES} — "
               "the tests that need them did not run")
        sys.stderr.write(msg + "\n")
        pytest.skip(msg)
    return KERAS_FIXTURES


def learnable_task(seed, n=256, val=64):
    """(x, y, x_val, y_val) of 28x28x1 images whose label is the argmax of a
    fixed linear map of the pixels: a CNN learns it in a few epochs."""
    import numpy as np
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(28 * 28, 10)).astype("float32")
    x = rng.random((n + val, 28, 28, 1), dtype=np.float32)
    y = np.argmax(x.reshape(len(x), -1) @ w, axis=1)
    return x[:n], y[:n], x[n:], y[n:]


_name_counter = [0]


@pytest.fixture
def name(request):
    """A model name unique in the module, from the test's name."""
    _name_counter[0] += 1
    base = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:100]
    return f"{base}-{_name_counter[0]}"
