"""Feature scaling of a data set (problem.scale), applied once when the problem is built.

`standard`: every feature centred to mean 0 and divided by its standard deviation (sparse
data is only divided, so it stays sparse, as scikit-learn's StandardScaler(with_mean=False));
`maxabs`: every feature divided by its largest absolute value (keeps sparsity and signs).
Constant or all-zero features are left as they are. The statistics come from all rows of the
data the problem uses (before any per-worker split); every rank computes the same numbers from
the same file, and the stored config records the choice.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError

SCALINGS = ("none", "standard", "maxabs")
log = logging.getLogger("asyncopt")


def scale_features(X, how: str, source: str = "data"):
    """X scaled as `how` says (a new array/matrix; X itself is not changed)."""
    if how not in SCALINGS:
        raise ConfigError(f"problem.scale: {how!r} is not accepted; accepted: {', '.join(SCALINGS)}")
    if how == "none":
        return X
    sparse = sp.issparse(X)
    X = sp.csr_matrix(X, dtype=np.float64) if sparse else np.asarray(X, dtype=np.float64)
    if how == "maxabs":
        divisor = np.asarray(abs(X).max(axis=0).todense() if sparse else np.abs(X).max(axis=0)).ravel()
        centre = None
    else:
        mean = np.asarray(X.mean(axis=0)).ravel()
        squares = np.asarray(X.multiply(X).mean(axis=0) if sparse else (X * X).mean(axis=0)).ravel()
        divisor = np.sqrt(np.maximum(squares - mean * mean, 0.0))
        centre = None if sparse else mean
    divisor = np.where(divisor > 0, divisor, 1.0)
    if sparse:
        X = sp.csr_matrix(X @ sp.diags(1.0 / divisor))
    else:
        X = ((X - centre) if centre is not None else X) / divisor
    what = {"maxabs": "divided by its largest absolute value",
            "standard": "divided by its standard deviation" + ("" if sparse else " after centring")}[how]
    log.info("%s: problem.scale = %s: every feature %s (%d rows)", source, how, what, X.shape[0])
    return X
