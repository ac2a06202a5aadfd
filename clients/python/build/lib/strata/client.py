"""strata.client — the Registry: one method per REST call of the strata
server (../../shared/design/api.md), standard library only.

Owns: URLs, query strings, JSON in and out, streaming file bodies both ways,
turning error answers into StrataError subclasses (strata.errors).
Does not own: anything Keras (strata.keras), retries (the callback retries;
a plain call fails once, loudly, like huggingface_hub and mlflow's clients).

Each call opens its own connection: the registry is used from a training
thread and an upload thread at once, and a fresh loopback or LAN connection
costs far less than any call's work on the server.
"""
import http.client
import json
import math
import os
import shutil
import ssl
import tempfile
import urllib.parse

from .errors import ConnectionFailed, Conflict, StrataError, error_for

_CHUNK = 1 << 20          # bytes per read/write of a streamed body
_ERROR_BODY_MAX = 1 << 20  # an error answer is small; read at most this much
_NOT_GIVEN = object()     # "argument not passed" where None has a meaning


def _is_keras_model(x):
    return hasattr(x, "to_json") and hasattr(x, "save_weights")


def _arch_text(model_or_json):
    """Keras config text of a keras.Model, a JSON str or a dict."""
    if _is_keras_model(model_or_json):
        return model_or_json.to_json()
    if isinstance(model_or_json, dict):
        return json.dumps(model_or_json)
    if isinstance(model_or_json, (str, bytes)):
        return model_or_json.decode() if isinstance(model_or_json, bytes) else model_or_json
    raise TypeError("architecture must be a keras.Model, a JSON string or a dict, "
                    f"not {type(model_or_json).__name__}")


def _finite_metrics(metrics):
    """{name: float} from Keras logs (numpy scalars, tensors); values that are
    not finite numbers are left out (the server stores only finite ones)."""
    out = {}
    for k, v in (metrics or {}).items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[str(k)] = f
    return out


def keras_major(model):
    """3 for a Keras 3 model, 2 for tf.keras / tf-keras 2.x (by the class's module)."""
    mod = type(model).__module__
    if mod.startswith(("tf_keras", "tensorflow.python.keras", "keras.api._v2")):
        return 2
    if mod.startswith("keras"):
        import keras
        return int(keras.__version__.split(".")[0])
    return 3


def save_model_file(model, directory, weights_only=True, stem="checkpoint"):
    """Save `model` into `directory` the way its Keras writes checkpoints
    strata accepts; returns the path. Keras 3: .weights.h5 (or .keras);
    Keras 2: .h5 (save_weights, or model.save)."""
    k3 = keras_major(model) >= 3
    if weights_only:
        path = os.path.join(directory, stem + (".weights.h5" if k3 else ".h5"))
        model.save_weights(path)
    else:
        path = os.path.join(directory, stem + (".keras" if k3 else ".h5"))
        model.save(path)
    return path


class Registry:
    """A strata server. Every method is one REST call (lists follow `next`).

    url defaults to $STRATA_URL, then http://127.0.0.1:8080; token to
    $STRATA_TOKEN. timeout is the socket timeout of each call in seconds.
    """

    def __init__(self, url=None, token=None, timeout=60):
        self.url = (url or os.environ.get("STRATA_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else os.environ.get("STRATA_TOKEN")
        self.timeout = timeout
        u = urllib.parse.urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConnectionFailed(f"strata URL '{self.url}' is not http(s)://host[:port][/prefix]")
        self._https = u.scheme == "https"
        self._host = u.hostname
        try:
            self._port = u.port or (443 if self._https else 80)
        except ValueError:
            raise ConnectionFailed(f"strata URL '{self.url}' has a bad port") from None
        self._prefix = u.path.rstrip("/")

    def __repr__(self):
        return f"strata.Registry({self.url!r})"

    # ---- transport -------------------------------------------------------

    def _path(self, *segments):
        return self._prefix + "/" + "/".join(urllib.parse.quote(str(s), safe="") for s in segments)

    @staticmethod
    def _query(pairs):
        q = [(k, str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in pairs if v is not None]
        return ("?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)) if q else ""

    def _connect(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=t,
                                               context=ssl.create_default_context(),
                                               blocksize=_CHUNK)
        return http.client.HTTPConnection(self._host, self._port, timeout=t, blocksize=_CHUNK)

    def request(self, method, path, query=(), json_body=_NOT_GIVEN, body_path=None,
                content_type=None, headers=None, stream_to=None, timeout=None):
        """One call. Returns (status, headers, parsed JSON or text), or with
        `stream_to` (an open binary file) writes the body there and returns
        (status, headers, None). Raises a StrataError for any 4xx/5xx."""
        url = path + self._query(query)
        hdrs = {"Accept": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        body = None
        f = None
        if json_body is not _NOT_GIVEN:
            body = (json_body.text if isinstance(json_body, _RawJSON)
                    else json.dumps(json_body, allow_nan=False)).encode()
            hdrs["Content-Type"] = "application/json"
        elif body_path is not None:
            f = open(body_path, "rb")
            hdrs["Content-Length"] = str(os.fstat(f.fileno()).st_size)
            hdrs["Content-Type"] = content_type or "application/octet-stream"
        if content_type and body is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        conn = self._connect(timeout)
        try:
            try:
                conn.request(method, url, body=f if f is not None else body, headers=hdrs)
                resp = conn.getresponse()
                rh = {k.lower(): v for k, v in resp.getheaders()}
                if resp.status >= 400:
                    raw = resp.read(_ERROR_BODY_MAX)
                    raise self._error(method, url, resp.status, raw)
                if stream_to is not None:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        stream_to.write(chunk)
                    return resp.status, rh, None
                raw = resp.read()
            except StrataError:
                raise
            except (OSError, http.client.HTTPException) as e:
                raise ConnectionFailed(f"cannot reach strata at {self.url}: {e or type(e).__name__}",
                                       method=method, url=self.url + url) from e
        finally:
            conn.close()
            if f is not None:
                f.close()
        ct = rh.get("content-type", "")
        if ct.startswith("application/json"):
            return resp.status, rh, json.loads(raw) if raw else None
        return resp.status, rh, raw.decode("utf-8", "replace")

    def _error(self, method, url, status, raw):
        code, message, details = None, None, {}
        try:
            e = json.loads(raw)["error"]
            code, message, details = e.get("code"), e.get("message"), e.get("details") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if message is None:
            text = raw.decode("utf-8", "replace").strip()[:300]
            message = f"HTTP {status} without strata's error body" + (f": {text}" if text else "")
        return error_for(status, code, message, details, method=method, url=self.url + url)

    def _json(self, method, path, query=(), json_body=_NOT_GIVEN, **kw):
        return self.request(method, path, query, json_body, **kw)[2]

    def _list(self, path, query=()):
        """Every item of a paged list, following `next`."""
        items, after = [], None
        while True:
            page = self._json("GET", path, list(query) + [("after", after)])
            items.extend(page.get("items", []))
            after = page.get("next")
            if not after:
                return items

    def _arch_id(self, model_or_json):
        if isinstance(model_or_json, str) and model_or_json.startswith("sha256:"):
            return model_or_json
        return self.register_architecture(model_or_json)["id"]

    # ---- service -----------------------------------------------------------

    def health(self):
        """GET /healthz -> {"status": "ok"}."""
        return self._json("GET", self._prefix + "/healthz")

    # ---- architectures -------------------------------------------------------

    def register_architecture(self, model_or_json, name=None):
        """POST /v1/architectures: a keras.Model, its to_json() text or a dict -> dict."""
        # posted as the exact to_json() text, not re-encoded
        return self._json("POST", self._path("v1", "architectures"), [("name", name)],
                          json_body=_RawJSON(_arch_text(model_or_json)))

    def architecture(self, arch_id):
        """GET /v1/architectures/{id}."""
        return self._json("GET", self._path("v1", "architectures", arch_id))

    def architectures(self):
        """GET /v1/architectures (every page)."""
        return self._list(self._path("v1", "architectures"))

    # ---- models --------------------------------------------------------------

    def create_model(self, name, architecture=None, monitor=None, description=None, exist_ok=False):
        """POST /v1/models -> dict. architecture: keras.Model | JSON | dict |
        "sha256:…" id; monitor: ("val_loss", "min") or {"metric", "mode"}.
        exist_ok: a 409 answers the existing model instead of raising."""
        body = {"name": name}
        if architecture is not None:
            if isinstance(architecture, str) and architecture.startswith("sha256:"):
                body["architecture"] = architecture
            else:
                body["architecture"] = json.loads(_arch_text(architecture))
        if monitor is not None:
            if isinstance(monitor, (tuple, list)):
                metric, mode = (list(monitor) + ["min"])[:2]
                monitor = {"metric": metric, "mode": mode}
            body["monitor"] = monitor
        if description is not None:
            body["description"] = description
        try:
            return self._json("POST", self._path("v1", "models"), json_body=body)
        except Conflict:
            if not exist_ok:
                raise
            return self.model(name)

    def model(self, name):
        """GET /v1/models/{name} (with versions, tags, architecture)."""
        return self._json("GET", self._path("v1", "models", name))

    def models(self):
        """GET /v1/models (every page)."""
        return self._list(self._path("v1", "models"))

    def delete_model(self, name, force=False):
        """DELETE /v1/models/{name}; force=True deletes its versions too."""
        return self._json("DELETE", self._path("v1", "models", name), [("force", force or None)])

    # ---- versions ------------------------------------------------------------

    def upload(self, name, path_or_model, epoch=None, run=None, metrics=None, tags=(),
               notes=None, parent=None, digest=None):
        """POST /v1/models/{name}/versions with the file as the raw body
        (streamed) -> the version dict. A keras.Model is saved with
        save_weights to a temporary file first. digest: "sha256:…" the
        server must find, else 400 digest_mismatch and nothing stored."""
        tmp = None
        try:
            if _is_keras_model(path_or_model):
                tmp = tempfile.mkdtemp(prefix="strata-upload-")
                path = save_model_file(path_or_model, tmp)
            else:
                path = os.fspath(path_or_model)
            q = [("epoch", epoch), ("run", run), ("notes", notes), ("parent", parent),
                 ("digest", digest)]
            if metrics:
                q.append(("metrics", json.dumps(_finite_metrics(metrics))))
            q += [("tag", t) for t in ([tags] if isinstance(tags, str) else tags)]
            ctype = "application/zip" if path.endswith(".keras") else "application/x-hdf5"
            return self._json("POST", self._path("v1", "models", name, "versions"), q,
                              body_path=path, content_type=ctype)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

    def version(self, name, ref="latest"):
        """GET /v1/models/{name}/versions/{ref} (a number, a tag, or latest)."""
        return self._json("GET", self._path("v1", "models", name, "versions", ref))

    def versions(self, name, run=None, tag=None, order_by=None, order=None, limit=None,
                 min_epoch=None, max_epoch=None):
        """GET /v1/models/{name}/versions; every page unless `limit` is given."""
        q = [("run", run), ("tag", tag), ("order_by", order_by), ("order", order),
             ("min_epoch", min_epoch), ("max_epoch", max_epoch)]
        path = self._path("v1", "models", name, "versions")
        if limit is not None:
            return self._json("GET", path, q + [("limit", limit)]).get("items", [])
        return self._list(path, q)

    def delete_version(self, name, version, force=False):
        """DELETE /v1/models/{name}/versions/{n}."""
        return self._json("DELETE", self._path("v1", "models", name, "versions", version),
                          [("force", force or None)])

    def download(self, name, ref, path, layers=None, exclude=None, for_architecture=None,
                 format=None):
        """GET …/versions/{ref}/weights into `path` (a file, or a directory to
        take the server's file name) -> the path written. The body goes to a
        temporary file beside it and is renamed into place when complete.
        layers / exclude: names (list or comma string); for_architecture:
        keras.Model | JSON | id (registered on the fly); format: keras2|keras3."""
        return self.download_info(name, ref, path, layers, exclude, for_architecture, format)[0]

    def download_info(self, name, ref, path, layers=None, exclude=None, for_architecture=None,
                      format=None):
        """download(), returning (path, response headers) — headers["x-strata-layers"]
        lists the layers a selection included."""
        def names(x):
            return x if x is None or isinstance(x, str) else ",".join(x)
        q = [("layers", names(layers)), ("exclude", names(exclude)), ("format", format)]
        if for_architecture is not None:
            q.append(("for", self._arch_id(for_architecture)))
        path = os.fspath(path)
        directory = path if os.path.isdir(path) else (os.path.dirname(path) or ".")
        fd, part = tempfile.mkstemp(prefix=".strata-", suffix=".part", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                _, hdrs, _ = self.request("GET", self._path("v1", "models", name, "versions", ref,
                                                            "weights"), q, stream_to=out)
            if os.path.isdir(path):
                fname = _disposition_filename(hdrs.get("content-disposition", "")) or \
                    f"{name}-{ref}.h5"
                path = os.path.join(path, os.path.basename(fname))
            os.replace(part, path)
            part = None
            return path, hdrs
        finally:
            if part:
                os.unlink(part)

    def layers(self, name, ref):
        """GET …/versions/{ref}/layers -> list of layers with weight statistics."""
        return self._json("GET", self._path("v1", "models", name, "versions", ref,
                                             "layers"))["items"]

    def diff(self, name, a, b):
        """GET …/versions/{a}/diff/{b}: which layers moved between two versions."""
        return self._json("GET", self._path("v1", "models", name, "versions", a, "diff", b))

    def compatibility(self, name, ref, with_architecture):
        """GET …/versions/{ref}/compatibility?with=<architecture>, registered on the fly."""
        return self._json("GET", self._path("v1", "models", name, "versions", ref,
                                            "compatibility"),
                          [("with", self._arch_id(with_architecture))])

    def predict(self, name, ref, inputs):
        """POST …/versions/{ref}/predict: a batch of channels-last inputs ->
        the outputs; a numpy array in gives a numpy array out, a list a list."""
        as_numpy = hasattr(inputs, "tolist") and hasattr(inputs, "shape")
        batch = inputs.tolist() if as_numpy else inputs
        out = self._json("POST", self._path("v1", "models", name, "versions", ref, "predict"),
                         json_body={"inputs": batch})["outputs"]
        if as_numpy:
            import numpy
            return numpy.asarray(out, dtype=numpy.float32)
        return out

    # ---- tags --------------------------------------------------------------

    def set_tag(self, name, tag, version, expected_version=_NOT_GIVEN):
        """PUT /v1/models/{name}/tags/{tag}: create or move. expected_version:
        move only if the tag points there (None: only if it does not exist),
        else Conflict with the current version in .details."""
        body = {"version": int(version)}
        if expected_version is not _NOT_GIVEN:
            body["expected_version"] = expected_version
        return self._json("PUT", self._path("v1", "models", name, "tags", tag), json_body=body)

    def tags(self, name):
        """GET /v1/models/{name}/tags -> list of {tag, version, updated_at}."""
        return self._list(self._path("v1", "models", name, "tags"))

    def tag_history(self, name, tag):
        """GET /v1/models/{name}/tags/{tag}/history: every move of the tag."""
        return self._list(self._path("v1", "models", name, "tags", tag, "history"))

    def delete_tag(self, name, tag):
        """DELETE /v1/models/{name}/tags/{tag}."""
        return self._json("DELETE", self._path("v1", "models", name, "tags", tag))

    # ---- training history ----------------------------------------------------

    def log_metrics(self, name, run, epoch, metrics):
        """POST /v1/models/{name}/history: one epoch (Keras counts from 0)."""
        return self._json("POST", self._path("v1", "models", name, "history"),
                          json_body={"run": run, "epoch": int(epoch),
                                     "metrics": _finite_metrics(metrics)})

    def log_history(self, name, run, history, initial_epoch=0):
        """POST /v1/models/{name}/history: a History.history dict (or the
        History object itself)."""
        h = getattr(history, "history", history)
        cols = {str(k): [None if v is None or not math.isfinite(float(v)) else float(v)
                         for v in vals] for k, vals in h.items()}
        return self._json("POST", self._path("v1", "models", name, "history"),
                          json_body={"run": run, "history": cols,
                                     "initial_epoch": int(initial_epoch)})

    def history(self, name, run=None, metrics=None):
        """GET /v1/models/{name}/history -> {"runs": [...]}."""
        if metrics is not None and not isinstance(metrics, str):
            metrics = ",".join(metrics)
        return self._json("GET", self._path("v1", "models", name, "history"),
                          [("run", run), ("metrics", metrics)])

    def runs(self, name):
        """GET /v1/models/{name}/runs (every page)."""
        return self._list(self._path("v1", "models", name, "runs"))


class _RawJSON:
    """A JSON body sent as the given text (an architecture's to_json())."""

    def __init__(self, text):
        self.text = text


def _disposition_filename(value):
    for part in value.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "filename" and v:
            return v.strip('"')
    return None
