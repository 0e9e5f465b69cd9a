"""Weight rounding that minimizes each layer's output error, not each weight's (GPTQ, Frantar et al. 2022).

Rounding every weight to the nearest grid point ignores that a layer's output error is
dW @ x: errors of weights that see correlated inputs add up. GPTQ quantizes a layer's weight
columns one at a time and moves the not-yet-quantized weights of the same output channel to cancel
the error just made, using H = E[x x^T] of the layer's real inputs (calibration patches). It is the
optimal-brain-surgeon update applied column by column; no training, a few seconds for all of SqueezeNet.

With keep_zeros (rounding 'gptq', 'gptq-inorder') pruned weights stay exactly zero: the compensation only
moves surviving weights, and Deep Compression's sparsity is kept for hardware that skips zeros. Without it
('gptq-dense', sqz's default) every position may take a code: the hardware stores all of them densely
anyway, and the two thirds of SqueezeNet's weights that were pruned become free variables for the
compensation (much lower output error below 8 bits, BENCHMARKS.md). The result is a weight on the layer's
fixed-point grid for every position: integer codes that the QuantSpec carries beside it, read by the
emulator and the HLS generator alike.
"""
from __future__ import annotations

import numpy as np

from quant import arithmetic as A
from quant.fixed_point import FixedFormat

DAMPING = 0.01     # fraction of mean(diag H) added to H's diagonal (GPTQ's default)
# how a layer's weights become codes (QuantSpec calibration field 'weight_rounding', `--weight-rounding`)
WEIGHT_ROUNDINGS = ("nearest", "gptq", "gptq-dense", "gptq-inorder")


def gptq_codes(w_oihw: np.ndarray, hessian: np.ndarray, fmt: FixedFormat, damping: float = DAMPING,
               act_order: bool = True, keep_zeros: bool = True) -> np.ndarray:
    """Integer codes (OIHW) of fmt for w, rounded to minimize tr(dW H dW^T); zeros stay zero unless
    keep_zeros is False.

    act_order: quantize the inputs with the largest E[x^2] first (GPTQ's "act-order"), so that the
    weights that matter most are rounded while the most weights are left to compensate (measured on
    held-out images at 8/8: agreement with float 94.9 -> 95.8 %, BENCHMARKS.md); False: patch order."""
    o = w_oihw.shape[0]
    W = A.weight_matrix(np.asarray(w_oihw, np.float64)).T.copy()     # (O, K), K in patch order (ky, kx, c)
    mask = W != 0 if keep_zeros else np.ones(W.shape, bool)
    K = W.shape[1]
    H = np.array(hessian, np.float64, copy=True)
    dead = np.diag(H) == 0                         # inputs that never fire: nothing to compensate with
    H[dead, dead] = 1.0
    H[np.diag_indices(K)] += damping * np.mean(np.diag(H))
    order = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(K)
    W, mask, H = W[:, order], mask[:, order], H[np.ix_(order, order)]
    # upper Cholesky factor of H^-1: row i holds the update that column i's error spreads to later columns
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    codes = np.zeros(W.shape, np.int64)
    for i in range(K):
        c = fmt.quantize(W[:, i]) * mask[:, i]
        codes[:, i] = c
        err = (W[:, i] - fmt.to_float(c)) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
        W[:, i + 1:] *= mask[:, i + 1:]
    codes[:, order] = codes.copy()
    kh = w_oihw.shape[2]
    return codes.reshape(o, kh, kh, -1).transpose(0, 3, 1, 2).copy()


def nearest_codes(w_oihw: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    return fmt.quantize(np.asarray(w_oihw, np.float64))
