"""Weighted sums of outer products, the kernel behind every splitting matrix.

Dense and Conv2d neurons share one input matrix H~ (M, d) (samples, or sample x
position pairs, with a 1 appended for the bias) and differ only in a scalar
coefficient per row, ``C[m, i] = g_{m,i} f''(z_{m,i})``:

    S_i = sum_m C[m, i] h~_m h~_m^T                         (n, d, d)

All n matrices come out of ONE matrix product: with the row-wise outer products
restricted to the upper triangle, ``P[m, t] = h~_m[j_t] h~_m[k_t]`` for the
T = d(d+1)/2 index pairs j_t <= k_t,

    S[:, j_t, k_t] = (C^T P)[:, t]

which costs 2 M n T = M n d(d+1) flops (symmetry halves the work) and memory
O(n d^2 + chunk T). The product S_i v_i for all i without forming S:

    S_i v_i = sum_m C[m, i] (h~_m . v_i) h~_m = ((H~ V^T) * C)^T H~   (row i)
"""

from __future__ import annotations

import numpy as np

#: Bytes of the (chunk, T) block of outer products held at once.
CHUNK_BYTES = 32 * 2**20


def weighted_outer_sum(H, C) -> np.ndarray:
    """S[i] = sum_m C[m, i] H[m] H[m]^T for all i, via the upper-triangle product.

    Parameters
    ----------
    H : ndarray (M, d)
    C : ndarray (M, n)

    Returns
    -------
    ndarray (n, d, d), each slice symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[1.0, 2.0]]); C = np.array([[3.0]])
    >>> weighted_outer_sum(H, C)[0]
    array([[ 3.,  6.],
           [ 6., 12.]])
    """
    M, d = H.shape
    n = C.shape[1]
    rows, cols = np.triu_indices(d)  # (T,), (T,)
    T = rows.size
    chunk = max(1, CHUNK_BYTES // (8 * T))
    upper = np.zeros((n, T))
    for start in range(0, M, chunk):
        Hc = H[start : start + chunk]
        P = Hc[:, rows] * Hc[:, cols]  # (chunk, T)
        upper += C[start : start + chunk].T @ P  # (n, T)
    S = np.empty((n, d, d))
    S[:, rows, cols] = upper
    S[:, cols, rows] = upper
    return S


def weighted_outer_matvec(H, C, V) -> np.ndarray:
    """Row i is S_i V[i] with S_i = sum_m C[m, i] H[m] H[m]^T, without forming S.

    Parameters
    ----------
    H : ndarray (M, d)
    C : ndarray (M, n)
    V : ndarray (n, d)

    Returns
    -------
    ndarray (n, d)
    """
    return ((H @ V.T) * C).T @ H  # (M, n) -> (n, d)


def with_ones(X) -> np.ndarray:
    """Append a column of ones: h~ = [h, 1] (the bias is the last coordinate)."""
    return np.hstack([X, np.ones((X.shape[0], 1))])
