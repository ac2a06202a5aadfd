"""strata.errors — every failure of a call is a StrataError carrying the
server's JSON error envelope ``{"error": {"code", "message", "details"}}``.

The subclass is chosen by one table (status, code) -> class, like the
server's one table of error codes -> statuses.
"""


class StrataError(Exception):
    """An error answer of the strata server, or no answer at all.

    .status  the HTTP status (None when the server could not be reached)
    .code    the API's error code ("not_found", "invalid_weights", ...)
    .message the server's message: what was wrong and what to do
    .details the server's details object (a dict, {} when none)
    """

    def __init__(self, message, status=None, code=None, details=None, method=None, url=None):
        self.status = status
        self.code = code
        self.message = message
        self.details = details if isinstance(details, dict) else {}
        self.method = method
        self.url = url
        where = f"{method} {url}: " if method and url else ""
        head = f"{status} {code}: " if status is not None else ""
        super().__init__(f"{where}{head}{message}")

    @property
    def problems(self):
        """details["problems"] of a 422 (one dict per layer problem), else []."""
        p = self.details.get("problems")
        return p if isinstance(p, list) else []


class ConnectionFailed(StrataError):
    """The server could not be reached (refused, timed out, reset, bad URL)."""


class BadRequest(StrataError):
    """400: the request was malformed (bad name, bad query, digest mismatch)."""


class Unauthorized(StrataError):
    """401 (no or unknown token) or 403 (token with too small a scope)."""


class NotFound(StrataError):
    """404: no such model, version, tag, architecture or run."""


class Conflict(StrataError):
    """409: the name exists, versions exist, or a tag moved meanwhile."""


class TooLarge(StrataError):
    """413: the body is past the server's size limit."""


class InvalidWeights(StrataError):
    """422 invalid_weights: the checkpoint does not fit the architecture;
    .problems lists every layer problem."""


class InvalidArchitecture(StrataError):
    """422 invalid_architecture: the Keras config cannot be used."""


class Unavailable(StrataError):
    """503: the server is busy or shutting down; retry later."""


# (status, code or None) -> class; the first match wins.
_BY_ANSWER = (
    (400, None, BadRequest),
    (401, None, Unauthorized),
    (403, None, Unauthorized),
    (404, None, NotFound),
    (409, None, Conflict),
    (413, None, TooLarge),
    (422, "invalid_weights", InvalidWeights),
    (422, "invalid_architecture", InvalidArchitecture),
    (503, None, Unavailable),
)


def error_for(status, code, message, details, method=None, url=None):
    """The StrataError subclass instance for one error answer (new)."""
    cls = StrataError
    for st, cd, c in _BY_ANSWER:
        if st == status and (cd is None or cd == code):
            cls = c
            break
    return cls(message, status=status, code=code, details=details, method=method, url=url)
