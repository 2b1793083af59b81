"""Batch normalisation of a layer's pre-activation rows, shared by Dense and Conv2d.

The normalised units are the columns of a matrix ``Z`` (M, c): M rows are the samples
(Dense) or the (sample, position) pairs (Conv2d), column i is channel (neuron) i.
See docs/derivatives.md, section "Batch normalisation", for the derivation.

train mode   mu = mean_m Z          var = mean_m (Z - mu)^2 (biased)     s = 1/sqrt(var + eps)
eval mode    mu = running_mean      var = running_var                    s = 1/sqrt(var + eps)
both         Zh = (Z - mu) s        Y = gamma Zh + beta

With P(u) = u - mean_m u - Zh mean_m(Zh u) (per column), the projection that the batch
statistics put in every derivative (train mode only; in eval mode P = identity and R_s = 0):

backward     dZh = gamma dY         dZ = s P(dZh)
             dgamma = sum_m dY Zh   dbeta = sum_m dY
R-forward    R_Zh = s P(R_Z)        R_Y = v_gamma Zh + gamma R_Zh + v_beta
             R_s / s = -s mean_m(Zh R_Z)
R-backward   R_dZh = v_gamma dY + gamma R_dY
             R_dZ = (R_s / s) dZ + s [P(R_dZh) - R_Zh mean_m(Zh dZh) - Zh mean_m(R_Zh dZh)]
             R_dgamma = sum_m (R_dY Zh + dY R_Zh)          R_dbeta = sum_m R_dY
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit.layers._columns import column_dots, column_sums

#: The two modes of a batch-normalised layer (``Network.mode``).
MODES = ("train", "eval")


@dataclass(frozen=True)
class BNCache:
    """What the forward pass keeps: the mode, the normalised rows, the scale, and the
    statistics used (the batch's in train mode: ``set_running_statistics`` reads them)."""

    mode: str
    Zh: np.ndarray  # (M, c)
    s: np.ndarray  # (c,)
    mean: np.ndarray  # (c,)
    var: np.ndarray  # (c,)


def _mean(u):
    """mean_m u (c,) of rows u (M, c)."""
    return column_sums(u) / u.shape[0]


def _project(u, Zh):
    """P(u) = u - mean u - Zh mean(Zh u), per column (the batch statistics' projection)."""
    return u - _mean(u) - Zh * (column_dots(Zh, u) / u.shape[0])


def forward(Z, gamma, beta, mode, running_mean, running_var, eps):
    """``(Y, cache)``: Y = gamma (Z - mu) s + beta with the mode's statistics (train mode: the
    batch's mean and biased variance, the variance from the centred rows it keeps)."""
    mu = _mean(Z) if mode == "train" else running_mean  # (c,)
    Zh = np.subtract(Z, mu)  # (M, c), then scaled in place: each temporary is a memory pass
    var = column_dots(Zh, Zh) / Z.shape[0] if mode == "train" else running_var  # (c,)
    s = 1.0 / np.sqrt(var + eps)  # (c,)
    Zh *= s
    Y = np.multiply(Zh, gamma)  # (M, c)
    Y += beta
    return Y, BNCache(mode, Zh, s, mu, var)


def backward(dY, gamma, cache):
    """``(dZ, dgamma, dbeta)``.

    With k = gamma s, mean_m dY = dbeta / M and mean_m(Zh dY) = dgamma / M, the train-mode
    s P(gamma dY) is k (dY - dbeta / M - Zh dgamma / M): the two sums, then two passes.
    """
    dbeta, dgamma = column_sums(dY), column_dots(dY, cache.Zh)  # (c,)
    k = gamma * cache.s  # (c,)
    dZ = np.multiply(dY, k)  # (M, c)
    if cache.mode == "train":
        M = dY.shape[0]
        dZ -= k * dbeta / M
        dZ -= cache.Zh * (k * dgamma / M)
    return dZ, dgamma, dbeta


def r_forward(R_Z, gamma, v_gamma, v_beta, cache):
    """``(R_Y, R_Zh)``: the R-image of Y given the R-image of Z (M, c)."""
    R_Zh = cache.s * (_project(R_Z, cache.Zh) if cache.mode == "train" else R_Z)  # (M, c)
    return v_gamma * cache.Zh + gamma * R_Zh + v_beta, R_Zh


def r_backward(dY, R_dY, R_Z, R_Zh, gamma, v_gamma, cache):
    """``(dZ, R_dZ, R_dgamma, R_dbeta)``: the backward pass and its R-image."""
    Zh, s = cache.Zh, cache.s
    dZh = gamma * dY  # (M, c)
    R_dZh = v_gamma * dY + gamma * R_dY  # (M, c)
    if cache.mode == "train":
        M = dY.shape[0]
        dZ = s * _project(dZh, Zh)
        rho = -s * column_dots(Zh, R_Z) / M  # R_s / s, (c,)
        R_P = (_project(R_dZh, Zh) - R_Zh * (column_dots(Zh, dZh) / M)
               - Zh * (column_dots(R_Zh, dZh) / M))
        R_dZ = rho * dZ + s * R_P
    else:
        dZ, R_dZ = s * dZh, s * R_dZh
    R_dgamma = column_dots(R_dY, Zh) + column_dots(dY, R_Zh)
    return dZ, R_dZ, R_dgamma, column_sums(R_dY)


def outer_operator(H, C):
    """``V -> row i: S_i V[i]`` for S_i = sum_m C[m, i] h_m h_m^T (no bias coordinate).

    ``S_i v_i = sum_m C[m, i] (h_m . v_i) h_m``: two matrix products, S never formed.
    H (M, d), C (M, n); the product maps V (n, d) to (n, d).
    """
    HT = np.ascontiguousarray(H.T)  # (d, M)
    CT = np.ascontiguousarray(C.T)  # (n, M)

    def product(V):
        return ((V @ HT) * CT) @ H  # (n, d)

    return product
