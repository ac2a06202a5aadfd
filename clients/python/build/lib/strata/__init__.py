"""strata — the Python client of the strata model registry.

    import strata
    reg = strata.Registry()            # $STRATA_URL or http://127.0.0.1:8080
    reg.create_model("mnist-cnn", architecture=model, monitor=("val_loss", "min"))
    reg.upload("mnist-cnn", model, epoch=4, run="r1", metrics=logs)

Keras callbacks and loaders: strata.keras (imports Keras lazily).
"""
from .client import Registry
from .errors import (BadRequest, Conflict, ConnectionFailed, InvalidArchitecture,
                     InvalidWeights, NotFound, StrataError, TooLarge, Unauthorized, Unavailable)

__version__ = "0.1.0"
__all__ = ["Registry", "StrataError", "ConnectionFailed", "BadRequest", "Unauthorized",
           "NotFound", "Conflict", "TooLarge", "InvalidWeights", "InvalidArchitecture",
           "Unavailable"]
