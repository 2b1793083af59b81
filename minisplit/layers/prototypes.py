"""Prototype layer (Li, Liu, Chen & Rudin 2018): similarities of each input to m prototypes.

Row j of ``prototypes`` P (m, d) is neuron j; ``masses`` pi (m,) are its output weights into
the layer's own penalty (a buffer, not trained: a split halves them, like the reader's weights,
so a split at eps = 0 keeps the loss). See :mod:`minisplit.layers.base` for the naming and
docs/prototypes.md for every derivation.

With D[n, j] = ||z_n - p_j||^2, delta_nj = z_n - p_j and a similarity phi:

forward      D = rowsum(Z*Z) - 2 Z P^T + rowsum(P*P)^T         A = phi(D)
penalty      lambda1 R1 + lambda2 R2 (soft minimum of temperature tau; tau = 0: hard min)
             R2 = 1/N sum_n smin_pi(D[n, :])      (each input close to some prototype)
             R1 = sum_j pi_j / sum(pi) smin(D[:, j]) (each prototype close to some input)
             smin_pi(x) = -tau log(sum_j pi_j exp(-x_j / tau) / sum_j pi_j)
backward     G = phi'(D) * dA + lambda1 dR1/dD + lambda2 dR2/dD
             dR2/dD[n, j] = w_nj / N,   w = softmax over j of (log pi_j - D[n, j] / tau)
             dR1/dD[n, j] = pi_j / sum(pi) u_nj,   u = softmax over n of (-D[n, j] / tau)
             dP = -2 (G^T Z - colsum(G) * P)             dZ = 2 (rowsum(G) * Z - G P)
R-forward    R_D[n, j] = 2 delta_nj . (R_z_n - v_j)         R_A = phi'(D) * R_D
R-backward   R_G = phi''(D) * R_D * dA + phi'(D) * R_dA + lambda1 R(dR1/dD) + lambda2 R(dR2/dD)
             R(dR2/dD)[n, j] = -(w_nj / (N tau)) (R_D[n, j] - sum_k w_nk R_D[n, k])
             R(dR1/dD)[n, j] = -(pi_j u_nj / (sum(pi) tau)) (R_D[n, j] - sum_n' u_n'j R_D[n', j])
             R_dP = -2 (R_G^T Z + G^T R_Z - colsum(R_G) * P - colsum(G) * V)
             R_dZ = 2 (rowsum(R_G) * Z + rowsum(G) * R_Z - R_G P - G V)
splitting    S_j = 4 sum_n dA phi'' delta delta^T + 2 (sum_n dA phi') I                (readers)
                 + lambda2 / N sum_n w_nj (2 I - (4 / tau) delta delta^T)               (R2)
                 + lambda1 pi_j / sum(pi) (2 I - (4 / tau) Cov_u(delta))                 (R1)
             squared distances (phi(D) = D) without penalty: S_j = 2 (sum_n dA_nj) I, isotropic.

The splitting theory covers the soft minimum (tau > 0): with the hard minimum (tau = 0) a
split lowers R1 and R2 at *first* order in eps (the LBG / k-means split), so the splitting
matrix of a layer with a hard-min penalty is refused.
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_choice, check_int, check_real, make_rng
from minisplit.layers._outer import weighted_outer_sum
from minisplit.layers.base import NeuronLayer

#: The epsilon of ProtoPNet's log similarity log((D + 1) / (D + epsilon)).
LOG_EPSILON = 1e-4


def _squared(D, width):
    return D.copy(), np.ones_like(D), np.zeros_like(D)


def _gaussian(D, width):
    c = 0.5 / (width * width)
    a = np.exp(-c * D)
    return a, -c * a, c * c * a


def _log(D, width):
    a, b = D + 1.0, D + LOG_EPSILON
    return np.log(a / b), 1.0 / a - 1.0 / b, 1.0 / (b * b) - 1.0 / (a * a)


#: Similarities phi(D) of a squared distance D: ``(phi, phi', phi'')`` side by side.
SIMILARITIES = {"squared": _squared, "gaussian": _gaussian, "log": _log}


def soft_min(X, tau, weights=None, axis=-1):
    """``(value, softmax weights)`` of the weighted soft minimum along ``axis``.

    smin(x) = -tau log(sum_j pi_j exp(-x_j / tau) / sum_j pi_j); its gradient is the softmax
    w_j = pi_j exp(-x_j / tau) / sum_k pi_k exp(-x_k / tau). tau = 0 is the hard minimum
    (its gradient the indicator of the first minimum). As tau -> 0 the soft minimum tends to
    min_j x_j (pi_j > 0); as tau -> inf to the weighted mean sum_j pi_j x_j / sum_j pi_j.

    Examples
    --------
    >>> import numpy as np
    >>> value, w = soft_min(np.array([[1.0, 3.0]]), tau=0.0)
    >>> value, w
    (array([1.]), array([[1., 0.]]))
    """
    X = np.moveaxis(np.asarray(X, dtype=np.float64), axis, -1)
    shape = [1] * (X.ndim - 1) + [X.shape[-1]]
    pi = np.ones(shape) if weights is None else np.reshape(weights, shape)
    low = X.min(axis=-1, keepdims=True)
    if tau == 0.0:
        w = np.zeros_like(X)
        np.put_along_axis(w, np.argmin(X, axis=-1)[..., None], 1.0, axis=-1)
        value = low[..., 0]
    else:
        e = pi * np.exp(-(X - low) / tau)  # the smallest exponent is 0: no overflow
        total = e.sum(axis=-1, keepdims=True)
        w = e / total
        value = (low - tau * np.log(total / pi.sum()))[..., 0]
    return value, np.moveaxis(w, -1, axis)


class Prototypes(NeuronLayer):
    """Prototype layer ``A = phi(||z - p_j||^2)`` with Li et al.'s penalties R1 and R2.

    Parameters
    ----------
    n_in, n_prototypes : int
        Latent dimension d and number of prototypes m, both > 0.
    similarity : {"squared", "gaussian", "log"}
        phi of the squared distance D: ``"squared"`` D itself (Li et al.: the reader learns
        negative weights), ``"gaussian"`` exp(-D / (2 width^2)) (the RBF layer),
        ``"log"`` log((D + 1) / (D + 1e-4)) (ProtoPNet).
    width : float
        > 0, the Gaussian's width s (unused otherwise).
    r1, r2 : float
        >= 0, the weights lambda1, lambda2 of the penalties R1 and R2 (Li et al.: 1 and 1).
    tau : float
        >= 0, the soft minimum's temperature; 0 is Li et al.'s hard minimum.
    seed : int, Generator or None
        Initialisation: ``prototypes ~ U(0, 1)`` (Li et al.), ``masses = 1``; None draws
        fresh entropy.

    Attributes
    ----------
    prototypes : ndarray (m, d)
    masses : ndarray (m,)
        Each prototype's weight in R1 and R2 (a buffer, not trained).

    References
    ----------
    O. Li, H. Liu, C. Chen, C. Rudin, "Deep Learning for Case-Based Reasoning through
    Prototypes: A Neural Network that Explains Its Predictions", AAAI 2018.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Prototypes(2, 3, similarity="gaussian", r2=1.0, tau=0.1, seed=0)
    >>> A, cache = layer.forward(np.zeros((4, 2)))
    >>> A.shape, layer.penalty(cache) > 0
    ((4, 3), True)
    """

    param_names = ("prototypes",)
    buffer_names = ("masses",)

    def __init__(self, n_in, n_prototypes, similarity="squared", width=1.0, r1=0.0, r2=0.0,
                 tau=0.1, seed=None):
        self._configure(n_in, n_prototypes, similarity, width, r1, r2, tau)
        self._check_memory()
        self.prototypes = make_rng(seed, none=True).uniform(0.0, 1.0, (self.n_out, self.n_in))
        self.masses = np.ones(self.n_out)

    def _configure(self, n_in, n_prototypes, similarity="squared", width=1.0, r1=0.0, r2=0.0,
                   tau=0.1):
        self.n_in = check_int(n_in, "n_in", low=1)
        self.n_out = check_int(n_prototypes, "n_prototypes", low=1)
        self.similarity = check_choice(similarity, "similarity", SIMILARITIES)
        self.width = check_real(width, "width", low=0, low_open=True)
        self.r1 = check_real(r1, "r1", low=0)
        self.r2 = check_real(r2, "r2", low=0)
        self.tau = check_real(tau, "tau", low=0)

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_prototypes": self.n_out, "similarity": self.similarity,
                "width": self.width, "r1": self.r1, "r2": self.r2, "tau": self.tau}

    def param_shapes(self) -> dict:
        return {"prototypes": (self.n_out, self.n_in)}

    def _default_buffers(self) -> list:
        return [np.ones(self.n_out)]

    def set_buffers(self, values) -> None:
        super().set_buffers(values)
        if np.any(self.masses <= 0):
            raise ValueError(f"masses must be > 0, got {self.masses}")

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless X has shape (N, n_in)."""
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"Prototypes input must have shape (N, {self.n_in}), got {X.shape}")

    # ---- the passes -------------------------------------------------------------------------

    def forward(self, X):
        P = self.prototypes
        D = np.sum(X * X, axis=1)[:, None] - 2.0 * X @ P.T + np.sum(P * P, axis=1)  # (N, m)
        D = np.maximum(D, 0.0)  # the expansion can round a zero distance below zero
        A, dphi, d2phi = SIMILARITIES[self.similarity](D, self.width)
        value, w, u = 0.0, None, None
        if self.r2:
            r2, w = soft_min(D, self.tau, self.masses, axis=1)  # (N,), (N, m)
            value += self.r2 * float(np.mean(r2))
        if self.r1:
            r1, u = soft_min(D, self.tau, axis=0)  # (m,), (N, m)
            value += self.r1 * float(self.masses @ r1) / float(np.sum(self.masses))
        return A, (X, D, dphi, d2phi, value, w, u)

    def penalty(self, cache) -> float:
        return cache[4]

    def _penalty_grad(self, cache):
        """dR/dD of the layer's penalty (N, m), or 0."""
        X, D, _, _, _, w, u = cache
        grad = 0.0
        if self.r2:
            grad = grad + (self.r2 / D.shape[0]) * w
        if self.r1:
            grad = grad + self.r1 * (self.masses / np.sum(self.masses)) * u
        return grad

    def _penalty_r(self, cache, R_D):
        """The R-image of dR/dD: its Hessian times R_D (N, m); 0 for the hard minimum."""
        X, D, _, _, _, w, u = cache
        out = 0.0
        if self.tau == 0.0:
            return out  # piecewise linear in D
        if self.r2:
            centred = R_D - np.sum(w * R_D, axis=1, keepdims=True)
            out = out - (self.r2 / (D.shape[0] * self.tau)) * w * centred
        if self.r1:
            centred = R_D - np.sum(u * R_D, axis=0, keepdims=True)
            out = out - (self.r1 / self.tau) * (self.masses / np.sum(self.masses)) * u * centred
        return out

    def backward(self, dA, cache, need_dX=True):
        X, D, dphi, _, _, _, _ = cache
        P = self.prototypes
        G = dphi * dA + self._penalty_grad(cache)  # (N, m)
        dP = -2.0 * (G.T @ X - G.sum(axis=0)[:, None] * P)  # (m, d)
        dX = 2.0 * (G.sum(axis=1)[:, None] * X - G @ P) if need_dX else None  # (N, d)
        return dX, [dP]

    def _r_distance(self, R_X, V, cache):
        """R_D[n, j] = 2 (z_n - p_j) . (R_z_n - v_j)."""
        X, P = cache[0], self.prototypes
        R_D = -2.0 * (X @ V.T - np.sum(P * V, axis=1))  # (N, m): the -v_j part
        if R_X is not None:
            R_D += 2.0 * (np.sum(X * R_X, axis=1)[:, None] - R_X @ P.T)
        return R_D

    def r_forward(self, R_X, V, cache):
        (V_P,) = V
        R_D = self._r_distance(R_X, V_P, cache)
        return cache[2] * R_D, (R_X, R_D)

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        X, D, dphi, d2phi, _, _, _ = cache
        R_X, R_D = r_cache
        (V_P,) = V
        P = self.prototypes
        G = dphi * dA + self._penalty_grad(cache)  # (N, m)
        R_G = d2phi * R_D * dA + dphi * R_dA + self._penalty_r(cache, R_D)  # (N, m)
        g_col, g_row = G.sum(axis=0), G.sum(axis=1)
        R_dP = R_G.T @ X - R_G.sum(axis=0)[:, None] * P - g_col[:, None] * V_P
        if R_X is not None:
            R_dP = R_dP + G.T @ R_X
        R_grads = [-2.0 * R_dP]
        if not need_dX:
            return None, None, R_grads
        dX = 2.0 * (g_row[:, None] * X - G @ P)
        R_dX = R_G.sum(axis=1)[:, None] * X - R_G @ P - G @ V_P
        if R_X is not None:
            R_dX = R_dX + g_row[:, None] * R_X
        return dX, 2.0 * R_dX, R_grads

    def flops_per_neuron(self, in_shape) -> int:
        return self.n_in

    # ---- NeuronLayer: splitting (docs/prototypes.md) ---------------------------------------

    @property
    def n_neurons(self) -> int:
        return self.n_out

    @property
    def neuron_dim(self) -> int:
        return self.n_in

    def neuron_params(self):
        return self.prototypes.copy()  # (m, d)

    def _params_from_theta(self, theta, parents):
        return [theta]

    def _resized(self, n):
        return {"n_prototypes": n}

    def neuron_weights(self):
        return self.masses.copy()

    def _neuron_buffers(self, n, weights, parents):
        return [np.ones(n) if weights is None else weights]

    def _curvature_parts(self, dA, cache, d2f):
        """The per-sample weights of the three parts of S (see the module docstring)."""
        if d2f is not None:
            raise ValueError(f"d2f must be None for Prototypes (its similarity is exact), "
                             f"got {d2f!r}")
        X, D, dphi, d2phi, _, w, u = cache
        dA = np.asarray(dA)
        if dA.shape != D.shape:
            raise ValueError(f"dA must have shape {D.shape}, got {dA.shape}")
        if self.tau == 0.0 and (self.r1 or self.r2):
            raise ValueError(
                "tau must be > 0 for splitting matrices of a layer with an R1 or R2 penalty: "
                "with the hard minimum (tau = 0) a split lowers the penalty at first order in "
                "eps (the LBG split), outside the second-order theory; got tau = 0"
            )
        N, share = D.shape[0], self.masses / np.sum(self.masses)
        outer = 4.0 * dA * d2phi  # (N, m): weights of delta delta^T
        iso = 2.0 * np.sum(dA * dphi, axis=0)  # (m,): weights of I
        if self.r2:
            outer = outer - (4.0 * self.r2 / (N * self.tau)) * w
            iso = iso + (2.0 * self.r2 / N) * np.sum(w, axis=0)
        cov = None
        if self.r1:
            outer = outer - (4.0 * self.r1 / self.tau) * share * u
            iso = iso + 2.0 * self.r1 * share
            cov = (4.0 * self.r1 / self.tau) * share  # (m,): times (sum_n u delta)(...)^T
        return X, outer, iso, u, cov

    def splitting_matrices(self, dA, cache, d2f=None):
        X, outer, iso, u, cov = self._curvature_parts(dA, cache, d2f)
        P, d = self.prototypes, self.n_in
        w = outer.sum(axis=0)  # (m,)
        mc = (outer.T @ X)[:, :, None] * P[:, None, :]  # (m, d, d): m_j p_j^T
        S = weighted_outer_sum(X, outer) - (mc + mc.transpose(0, 2, 1))  # sum outer delta delta^T
        S = S + w[:, None, None] * (P[:, :, None] * P[:, None, :])
        if cov is not None:
            mean = u.T @ X - P  # (m, d): sum_n u_nj delta_nj (u sums to 1 over n)
            S = S + cov[:, None, None] * (mean[:, :, None] * mean[:, None, :])
        return S + iso[:, None, None] * np.eye(d)

    def splitting_operator(self, dA, cache, d2f=None):
        X, outer, iso, u, cov = self._curvature_parts(dA, cache, d2f)  # once for every product
        P = self.prototypes
        mean = None if cov is None else u.T @ X - P  # (m, d): sum_n u_nj delta_nj

        def product(V):
            WP = outer * (X @ V.T - np.sum(P * V, axis=1))  # (N, m): outer_nj delta_nj . v_j
            SV = WP.T @ X - WP.sum(axis=0)[:, None] * P  # (m, d)
            if cov is not None:
                SV = SV + cov[:, None] * np.sum(mean * V, axis=1)[:, None] * mean
            return SV + iso[:, None] * V

        return product
