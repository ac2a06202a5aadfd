"""strata.keras — Keras callbacks and loaders for the strata registry.

    from strata.keras import StrataCheckpoint, load_weights, resume

Works with Keras 3 (any backend) and with tf.keras / tf-keras 2.x: the
callback is duck-typed to both callback protocols, so it needs no Keras
import of its own; files are saved the way the model's Keras writes them
(.weights.h5 for Keras 3, .h5 for Keras 2).

Owns: deciding when to checkpoint (ModelCheckpoint's monitor / mode /
save_best_only / save_freq, and the seed's period), the on-disk spool, the
upload thread with its retries. Does not own: HTTP (strata.client).

Epochs are Keras' own 0-based epoch index everywhere — in the history, on a
version — as History, CSVLogger and on_epoch_end number them. A checkpoint
taken after the 5th epoch has epoch 4, and resume() answers initial_epoch 5.

The spool (spool_dir, default ~/.cache/strata/spool/<model>/<run>): every
checkpoint and history post is first a file there; a single thread per
spool directory sends them in order. An entry is <seq>.json (what to send)
beside its weights file; it is written under a temporary name and renamed,
so a crash leaves either a whole entry or none. Entries that cannot be sent
stay on disk for flush() or the next StrataCheckpoint on that directory.
The spool is bounded (max_spool_bytes): when a new checkpoint takes it past
the bound, the OLDEST waiting checkpoints are dropped with a warning and the
newest is always kept — the newest is the one resume() and save_best_only
need, an older one is superseded by it. History entries are never dropped
(they are tens of bytes).
"""
import hashlib
import json
import os
import random
import secrets
import shutil
import tempfile
import threading
import time
import warnings

from .client import Registry, _finite_metrics, keras_major, save_model_file
from .errors import ConnectionFailed, NotFound, StrataError

__all__ = ["StrataCheckpoint", "StrataWarning", "load_weights", "resume"]

_DEFAULT_SPOOL_BYTES = 2 << 30
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
_SETUP_TIMEOUT = 10.0      # seconds on_train_begin may spend asking the server


class StrataWarning(UserWarning):
    """A checkpoint or history post that could not be sent (yet)."""


def _warn(msg):
    warnings.warn(msg, StrataWarning, stacklevel=2)


def _retryable(e):
    return isinstance(e, ConnectionFailed) or (e.status is not None and
                                               (e.status >= 500 or e.status == 429))


def _cache_dir():
    return os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


def _new_run():
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def _auto_mode(monitor):
    m = monitor.lower()
    return "max" if any(k in m for k in ("acc", "auc", "precision", "recall", "f1", "fmeasure")) \
        else "min"


# ---- the spool and its one sender thread ---------------------------------------

class _Spool:
    """One spool directory and the thread that empties it (one per directory
    per process: two callbacks on one directory share it)."""

    _by_dir = {}
    _by_dir_lock = threading.Lock()

    @classmethod
    def get(cls, reg, directory, max_bytes, verbose):
        directory = os.path.abspath(directory)
        with cls._by_dir_lock:
            sp = cls._by_dir.get(directory)
            if sp is None:
                sp = cls._by_dir[directory] = cls(reg, directory)
        sp.reg, sp.max_bytes, sp.verbose = reg, max_bytes, verbose
        return sp

    def __init__(self, reg, directory):
        self.reg = reg
        self.dir = directory
        self.max_bytes = _DEFAULT_SPOOL_BYTES
        self.verbose = 0
        self.arch = {}                   # model name -> to_json text, to create it on a 404
        self.monitor = {}                # model name -> (metric, mode)
        self.problems = []               # every warning, for callers and tests
        self.sent = []                   # (meta["by"], answer) of every entry sent
        self._cv = threading.Condition()
        self._queue = []                 # seq strings, oldest first
        self._inflight = None
        self._stuck = False              # last attempt failed and is waiting to retry
        self._wake = False
        self._seq = 0
        self._thread = None
        os.makedirs(self.dir, exist_ok=True)
        for f in os.listdir(self.dir):   # leftovers of a crash mid-write
            if ".part" in f:
                os.unlink(os.path.join(self.dir, f))
        self._queue = sorted(f[:-5] for f in os.listdir(self.dir) if f.endswith(".json"))

    # -- writing entries (training thread) --

    def _next_seq(self):
        with self._cv:
            self._seq = max(self._seq + 1, time.time_ns())
            return f"{self._seq:020d}"

    def _commit(self, seq, meta):
        part = os.path.join(self.dir, seq + ".part.json")
        with open(part, "w") as f:
            json.dump(meta, f)
        os.replace(part, os.path.join(self.dir, seq + ".json"))
        with self._cv:
            self._queue.append(seq)
            self._cv.notify_all()
        self._start()

    def add_history(self, by, model, run, epoch, metrics):
        seq = self._next_seq()
        self._commit(seq, {"kind": "history", "by": by, "model": model, "run": run,
                           "epoch": epoch, "metrics": metrics})

    def add_checkpoint(self, by, keras_model, model, run, epoch, metrics, tags, weights_only):
        seq = self._next_seq()
        tmp = tempfile.mkdtemp(prefix=seq + ".part.", dir=self.dir)
        try:
            src = save_model_file(keras_model, tmp, weights_only, stem="w")
            suffix = os.path.basename(src)[1:]          # .weights.h5 | .h5 | .keras
            dst = os.path.join(self.dir, seq + suffix)
            os.replace(src, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._commit(seq, {"kind": "upload", "by": by, "model": model, "run": run, "epoch": epoch,
                           "metrics": metrics, "tags": list(tags), "file": os.path.basename(dst)})
        self._bound(seq)

    def _bound(self, newest):
        """Drop the oldest waiting checkpoints while the spool is past max_bytes."""
        with self._cv:
            entries = [(s, self._meta(s)) for s in self._queue]
            ups = [(s, m) for s, m in entries if m and m.get("kind") == "upload"]
            total = sum(self._size(m) for _, m in ups)
            for s, m in ups:
                if total <= self.max_bytes or s == newest:
                    break
                if s == self._inflight:
                    continue
                total -= self._size(m)
                self._queue.remove(s)
                self._remove(s, m)
                self._problem(f"strata: spool {self.dir} is past {self.max_bytes} bytes: dropped "
                              f"the oldest waiting checkpoint (run {m.get('run')}, epoch "
                              f"{m.get('epoch')}) to keep the newest")

    def _size(self, m):
        try:
            return os.path.getsize(os.path.join(self.dir, m["file"]))
        except OSError:
            return 0

    def _meta(self, seq):
        try:
            with open(os.path.join(self.dir, seq + ".json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _remove(self, seq, meta):
        if meta and meta.get("file"):
            try:
                os.unlink(os.path.join(self.dir, meta["file"]))
            except FileNotFoundError:
                pass
        try:
            os.unlink(os.path.join(self.dir, seq + ".json"))
        except FileNotFoundError:
            pass

    def _problem(self, msg):
        self.problems.append(msg)
        _warn(msg)

    # -- sending (the spool's thread, or flush() in the caller's) --

    def _start(self):
        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="strata-spool",
                                                daemon=True)
                self._thread.start()

    def _loop(self):
        delay = _BACKOFF_FIRST
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                seq = self._inflight = self._queue[0]
            ok = self._send(seq)
            with self._cv:
                self._inflight = None
                if ok:
                    if self._queue and self._queue[0] == seq:
                        self._queue.pop(0)
                    self._stuck = False
                    delay = _BACKOFF_FIRST
                    self._cv.notify_all()
                    continue
                self._stuck = True
                self._cv.notify_all()
                self._wake = False
                self._cv.wait_for(lambda: self._wake, timeout=delay * (0.75 + random.random() / 2))
                delay = min(delay * 2, _BACKOFF_MAX)

    def _send(self, seq):
        """Send one entry: True when it is done with (sent, or refused for
        good and reported); False to retry later."""
        meta = self._meta(seq)
        if meta is None:
            return True
        try:
            answer = self._send_meta(meta)
        except StrataError as e:
            if isinstance(e, NotFound) and self._create(meta["model"]):
                return self._send_again(seq)
            if _retryable(e):
                if not self._stuck:
                    self._problem(f"strata: cannot send {self._what(meta)} to {self.reg.url} "
                                  f"({e}); kept in {self.dir}, retrying in the background")
                return False
            detail = ""
            if e.problems:
                detail = "; problems: " + json.dumps(e.problems)
            self._problem(f"strata: the server refused {self._what(meta)}: {e}{detail}")
            self._remove(seq, meta)
            return True
        self.sent.append((meta.get("by"), answer))
        if self.verbose and meta["kind"] == "upload":
            print(f"strata: {meta['model']} v{answer.get('version')} uploaded "
                  f"(run {meta['run']}, epoch {meta['epoch']})", flush=True)
        self._remove(seq, meta)
        return True

    def _send_again(self, seq):
        """Once more right away (the model was just created)."""
        meta = self._meta(seq)
        try:
            answer = self._send_meta(meta)
        except StrataError:
            return False
        self.sent.append((meta.get("by"), answer))
        self._remove(seq, meta)
        return True

    def _what(self, meta):
        kind = "checkpoint" if meta["kind"] == "upload" else "history"
        return f"the {kind} of {meta['model']} run {meta['run']} epoch {meta['epoch']}"

    def _send_meta(self, meta):
        if meta["kind"] == "history":
            return self.reg.log_metrics(meta["model"], meta["run"], meta["epoch"], meta["metrics"])
        path = os.path.join(self.dir, meta["file"])
        if meta.get("tried"):
            # An earlier try may have been committed before its answer was
            # lost: look for it before sending again (retries are idempotent).
            done = self._already_there(meta, path)
            if done is not None:
                return done
        else:
            meta["tried"] = True
            self._rewrite(meta)
        return self.reg.upload(meta["model"], path, epoch=meta["epoch"], run=meta["run"],
                               metrics=meta["metrics"], tags=meta.get("tags", ()))

    def _rewrite(self, meta):
        seq = meta["file"].split(".", 1)[0]
        part = os.path.join(self.dir, seq + ".part.json")
        with open(part, "w") as f:
            json.dump(meta, f)
        os.replace(part, os.path.join(self.dir, seq + ".json"))

    def _already_there(self, meta, path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = "sha256:" + h.hexdigest()
        for v in self.reg.versions(meta["model"], run=meta["run"], min_epoch=meta["epoch"],
                                   max_epoch=meta["epoch"]):
            if v.get("digest") == digest:
                return v
        return None

    def _create(self, model):
        """The model is missing on the server: create it (with the
        architecture when the server takes it). True when it now exists."""
        arch, mon = self.arch.get(model), self.monitor.get(model)
        try:
            try:
                self.reg.create_model(model, architecture=arch, monitor=mon, exist_ok=True)
            except StrataError as e:
                if arch is None or e.status != 422:
                    raise
                self._problem(f"strata: the server cannot use {model}'s architecture ({e}); "
                              "created the model without one, so checkpoints are not validated")
                self.reg.create_model(model, monitor=mon, exist_ok=True)
            return True
        except StrataError as e:
            if not _retryable(e):
                self._problem(f"strata: cannot create model {model}: {e}")
            return False

    # -- waiting --

    def pending(self):
        with self._cv:
            return len(self._queue)

    def drain(self, timeout, give_up_when_stuck):
        """Wait until the spool is empty; False on timeout (or, with
        give_up_when_stuck, as soon as the server is unreachable)."""
        self._start()
        end = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._wake = True
            self._cv.notify_all()
            while self._queue:
                if give_up_when_stuck and self._stuck:
                    return False
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(timeout=left if left is not None else 1.0)
                if not give_up_when_stuck and self._stuck:
                    self._wake = True          # flush(): retry now, not after the backoff
                    self._cv.notify_all()
        return True


# ---- the callback ---------------------------------------------------------------

class StrataCheckpoint:
    """Keras' ModelCheckpoint, saving to a strata registry.

    Arguments as ModelCheckpoint's (monitor, mode, save_best_only, save_freq,
    save_weights_only, verbose) plus the seed's `period` (every `period`
    epochs). Each checkpoint is uploaded with its epoch (0-based), run and
    the epoch's logs as metrics; with log_history every epoch's logs go to the
    run's history. Training never waits on the network: see the module doc.
    """

    # the callback protocols of Keras 3 and of tf-keras 2.x
    _supports_tf_logs = False
    async_safe = False

    def __init__(self, reg, name, run=None, save_freq="epoch", period=1, monitor="val_loss",
                 mode="auto", save_best_only=False, save_weights_only=True, tags=(),
                 log_history=True, spool_dir=None, verbose=0, max_spool_bytes=_DEFAULT_SPOOL_BYTES,
                 drain_timeout=30.0):
        if not isinstance(reg, Registry):
            raise TypeError("reg must be a strata.Registry")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, not {save_freq!r}")
        if not (isinstance(period, int) and period > 0):
            raise ValueError(f"period must be a positive int, not {period!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
        self.reg = reg
        self.name = name
        self.run = run or _new_run()
        self.save_freq = save_freq
        self.period = period
        self.monitor = monitor
        self.mode = _auto_mode(monitor) if mode == "auto" else mode
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.tags = tuple([tags] if isinstance(tags, str) else tags)
        self.log_history = log_history
        self.verbose = verbose
        self.drain_timeout = drain_timeout
        self.spool_dir = spool_dir or os.path.join(_cache_dir(), "strata", "spool", name, self.run)
        self.best = None                 # best monitored value so far (server's, on resume)
        self.model = None
        self.params = {}
        self._spool = _Spool.get(reg, self.spool_dir, max_spool_bytes, verbose)
        self._batches = 0
        self._epoch = 0
        self._id = secrets.token_hex(6)      # marks this callback's entries in a shared spool

    # results for callers and tests
    @property
    def problems(self):
        """Every warning this callback's spool raised (strings)."""
        return self._spool.problems

    @property
    def uploaded(self):
        """The version dicts of this callback's checkpoints sent so far."""
        return [a for by, a in self._spool.sent
                if by == self._id and isinstance(a, dict) and "version" in a]

    def pending(self):
        """Entries (checkpoints and history posts) not sent yet."""
        return self._spool.pending()

    def flush(self, timeout=None):
        """Send everything in the spool now, retrying through failures, up to
        `timeout` seconds (None: until done). True when the spool is empty."""
        ok = self._spool.drain(timeout, give_up_when_stuck=False)
        if not ok:
            _warn(f"strata: {self.pending()} entries still in {self.spool_dir} after "
                  f"{timeout} s; they are sent by the next flush() or StrataCheckpoint")
        return ok

    # -- the callback protocol (Keras 3 and tf-keras) --

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def _implements_train_batch_hooks(self):
        return self.save_freq != "epoch"

    def _implements_test_batch_hooks(self):
        return False

    def _implements_predict_batch_hooks(self):
        return False

    def on_train_begin(self, logs=None):
        self._batches = 0
        try:
            arch = self.model.to_json()
        except Exception:                       # subclassed models have no config
            arch = None
        self._spool.arch[self.name] = arch
        self._spool.monitor[self.name] = (self.monitor, self.mode)
        quick = Registry(self.reg.url, self.reg.token, timeout=_SETUP_TIMEOUT)
        try:
            if self.save_best_only and self.best is None:
                self.best = self._server_best(quick)
        except NotFound:
            pass
        except StrataError as e:
            _warn(f"strata: cannot ask {self.reg.url} for run {self.run}'s best "
                  f"{self.monitor} ({e}); comparing from the first epoch of this fit")

    def _server_best(self, reg):
        order = "asc" if self.mode == "min" else "desc"
        vs = reg.versions(self.name, run=self.run, order_by="metrics." + self.monitor,
                          order=order, limit=1)
        if vs and self.monitor in (vs[0].get("metrics") or {}):
            return float(vs[0]["metrics"][self.monitor])
        return None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.save_freq == 0:
            self._maybe_save(self._epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        metrics = _finite_metrics(logs)
        if self.log_history and metrics:
            self._spool.add_history(self._id, self.name, self.run, epoch, metrics)
        if self.save_freq == "epoch" and (epoch + 1) % self.period == 0:
            self._maybe_save(epoch, logs)

    def _maybe_save(self, epoch, logs):
        metrics = _finite_metrics(logs)
        if self.save_best_only:
            cur = metrics.get(self.monitor)
            if cur is None:
                _warn(f"strata: can save best model only with {self.monitor} available, "
                      f"skipping (logs have {sorted(metrics)})")
                return
            better = self.best is None or (cur < self.best if self.mode == "min"
                                           else cur > self.best)
            if not better:
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}", flush=True)
                return
            if self.verbose:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {cur:.5f}, "
                      f"saving to strata {self.name}", flush=True)
            self.best = cur
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving to strata {self.name}", flush=True)
        try:
            self._spool.add_checkpoint(self._id, self.model, self.name, self.run, epoch, metrics,
                                       self.tags, self.save_weights_only)
        except OSError as e:
            _warn(f"strata: cannot write the checkpoint of epoch {epoch} to {self.spool_dir}: {e}")

    def on_train_end(self, logs=None):
        # Wait while uploads progress, at most drain_timeout; not at all once
        # the server is unreachable (the entries stay spooled).
        if not self._spool.drain(self.drain_timeout, give_up_when_stuck=True):
            _warn(f"strata: {self.pending()} checkpoint/history entries of {self.name} are not "
                  f"on {self.reg.url} yet; they stay in {self.spool_dir} and are sent in the "
                  "background, by flush(), or by the next StrataCheckpoint on that spool")

    # the remaining hooks of both protocols: nothing to do
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


# ---- loading ----------------------------------------------------------------------

def load_weights(model, reg, name, ref="best", transfer=False, layers=None, exclude=None):
    """Fill `model` from version `ref` of `name`, in the layout of the model's
    Keras (?format=keras3 or keras2). transfer=True asks for ?for=<the model's
    architecture>: every layer whose name and weight shapes fit. Returns the
    names of the layers loaded."""
    k3 = keras_major(model) >= 3
    partial = bool(transfer or layers or exclude)
    tmp = tempfile.mkdtemp(prefix="strata-load-")
    try:
        path = os.path.join(tmp, "w.weights.h5" if k3 else "w.h5")
        path, hdrs = reg.download_info(name, ref, path, layers=layers, exclude=exclude,
                                       for_architecture=model if transfer else None,
                                       format="keras3" if k3 else "keras2")
        sel = hdrs.get("x-strata-layers")
        loaded = [s for s in sel.split(",") if s] if sel is not None else \
            [lay.name for lay in model.layers if lay.weights]
        if k3:
            _load_keras3(model, path, partial)
        else:
            model.load_weights(path, by_name=partial)
        return loaded
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_keras3(model, path, partial):
    """Keras 3's load_weights wants every layer in the file; a partial set
    needs skip_mismatch=True, which also hides a layer that did not load. So
    each layer the file holds is checked against the model afterwards."""
    if not partial:
        model.load_weights(path)
        return
    with warnings.catch_warnings():
        # "A total of N objects could not be loaded": the layers left out
        warnings.filterwarnings("ignore", message=r"(?s).*could not be loaded")
        warnings.filterwarnings("ignore", message=r"(?s).*Skipping variable loading")
        model.load_weights(path, skip_mismatch=True)
    import h5py
    import numpy
    with h5py.File(path, "r") as f:
        group = f.get("layers")
        for lname in (group.keys() if group is not None else ()):
            vars_ = group[lname].get("vars")
            if vars_ is None or len(vars_) == 0:
                continue
            try:
                layer = model.get_layer(lname)
            except ValueError:
                raise ValueError(f"strata: the served file has layer '{lname}', which the model "
                                 "lacks") from None
            want = [numpy.asarray(vars_[str(i)]) for i in range(len(vars_))]
            got = layer.get_weights()
            if len(got) != len(want) or not all(numpy.array_equal(a, b) for a, b in zip(got, want)):
                raise ValueError(f"strata: Keras did not load layer '{lname}' from the served file "
                                 "(shapes or variable count differ)")


def resume(model, reg, name, run):
    """Load run `run`'s latest checkpoint into `model`; returns the
    initial_epoch to pass to fit() (0 when the run has no checkpoint yet)."""
    vs = reg.versions(name, run=run, order_by="epoch", order="desc", limit=1)
    if not vs or vs[0].get("epoch") is None:
        return 0
    load_weights(model, reg, name, ref=vs[0]["version"])
    return int(vs[0]["epoch"]) + 1
