"""Weighted sums of outer products, the kernel behind every splitting matrix.

Dense and Conv2d neurons share one input matrix H~ (M, d) (samples, or sample x
position pairs, with a 1 appended for the bias) and differ only in a scalar
coefficient per row, ``C[m, i] = g_{m,i} f''(z_{m,i})``:

    S_i = sum_m C[m, i] h~_m h~_m^T                         (n, d, d)

All n matrices come out of ONE matrix product: with the row-wise outer products
restricted to the upper triangle, ``P[m, t] = h~_m[j_t] h~_m[k_t]`` for the
T = d(d+1)/2 index pairs j_t <= k_t (row j of the triangle is the d - j columns
``h~_m[j] * h~_m[j:]``),

    S[:, j_t, k_t] = (C^T P)[:, t]

which costs 2 M n T = M n d(d+1) flops (symmetry halves the work). P is never
held whole: it is built tile by tile, a chunk of at least MIN_CHUNK_ROWS samples times as
many triangle rows as fit in the tile's budget, into one reused buffer by d slice
products (no index arrays, each writing contiguous rows of the transposed tile
P^T), and each tile's product (one reused array) is added into the rows of S it belongs
to. The budget is S's bytes over TILE_FRACTION, between
MIN_TILE_BYTES and CHUNK_BYTES, so memory is about (1 + 1/TILE_FRACTION) n d^2 doubles
besides H and C. With ``ones`` the column of ones of h~ is a row of the chunk's
transposed samples: H~ is never built.

For few, wide neurons (d >= PER_NEURON_RATIO n) the tiles' M d(d+1)/2 entries cost more
than the symmetry saves, and S comes from per-neuron products instead: per block of samples
and of columns, ``(C[:, i] * H[:, j0:j1])^T H[:, j0:]`` for all i in one product of the
scaled inputs stacked (the upper block rows; the rest mirrored).

The product
S_i v_i for all i without forming S (nor H~, a copy of the inputs with a column of ones):

    S_i v_i = sum_m C[m, i] (h~_m . v_i) h~_m = (H~^T ((H~ V^T) * C))^T   (row i)

with H~ V^T = H W^T + c for v_i = [w_i, c_i], and the last column of H~^T U the column
sums of U.
"""

from __future__ import annotations

import numpy as np

from minisplit.layers._columns import column_sums

#: Most bytes of the tile of outer products (triangle columns x samples) held at once.
CHUNK_BYTES = 32 * 2**20
#: Fewest bytes of the tile, whatever the size of S.
MIN_TILE_BYTES = 2**20
#: The tile takes at most S's bytes over this, so that forming S peaks at about
#: (1 + 1/TILE_FRACTION) times S plus the coefficients C (8: 1.44 x S with C at N = 4096,
#: d = 129, n = 128, 4-7 % slower than 4 at 1.60 x S; docs/splitting.md, section 10).
TILE_FRACTION = 8
#: Fewest samples per tile: the inner dimension of the tile's matrix product, which
#: runs far below the machine's matrix-product speed when it is short.
MIN_CHUNK_ROWS = 512
#: Per-neuron products instead of the triangle's tiles when d >= PER_NEURON_RATIO * n: the
#: tiles write M d(d+1)/2 entries, the per-neuron products' scaled inputs M n d (for up to
#: twice the flops), so with few, wide neurons the tiles are the cost (measured crossover
#: between d = 2 n and 2.5 n for n = 16 or 32, above 2.5 n for n = 128, on 2 cores:
#: docs/splitting.md, section 10).
PER_NEURON_RATIO = 2.5
#: Columns per block of the per-neuron products (upper block rows only): with blocks of 4096
#: samples, 24 columns were 5-30 % faster than 48 at d = 72 and 144 (2 cores, 2026-12-06),
#: and 16 no faster (docs/splitting.md, section 10).
PER_NEURON_WIDTH = 24
#: Most samples per block of the per-neuron products (fewer when the block's scaled inputs,
#: n x PER_NEURON_WIDTH of them per sample, would pass CHUNK_BYTES): 4096 took the small
#: CNN's second conv (M = 294,000, d = 72, n = 16) 25 % below 1024 and 16384.
PER_NEURON_ROWS = 4096


def weighted_outer_sum(H, C, ones=False) -> np.ndarray:
    """S[i] = sum_m C[m, i] h_m h_m^T for all i, via the upper-triangle product.

    Parameters
    ----------
    H : ndarray (M, d), or (M, d - 1) with ``ones``
    C : ndarray (M, n)
    ones : bool
        h_m = [H[m], 1] (the bias coordinate last) without copying H (default False:
        h_m = H[m]).

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
    >>> weighted_outer_sum(H, C, ones=True)[0]
    array([[ 3.,  6.,  3.],
           [ 6., 12.,  6.],
           [ 3.,  6.,  3.]])
    """
    d, n = H.shape[1] + bool(ones), C.shape[1]
    if d >= PER_NEURON_RATIO * n:
        return _per_neuron_sum(H, C, ones)
    C = np.ascontiguousarray(C, dtype=float)  # its row blocks, transposed, go to BLAS as is
    budget = min(CHUNK_BYTES, max(MIN_TILE_BYTES, 8 * n * d * d // TILE_FRACTION))
    return _triangle_sum(H, C, ones, budget)


def _triangle_sum(H, C, ones, budget) -> np.ndarray:
    """:func:`weighted_outer_sum` by the upper triangle's tiles (module docstring)."""
    M, d = H.shape[0], H.shape[1] + bool(ones)
    n = C.shape[1]
    T = d * (d + 1) // 2
    chunk = max(1, min(M, max(MIN_CHUNK_ROWS, budget // (8 * T))))  # samples per tile
    width = max(d, min(budget // (8 * chunk), budget // (8 * n)))  # triangle columns per tile
    runs = [(j0, j1, _triangle_offset(d, j0)) for j0, j1 in _triangle_rows(d, width)]
    widest = max(_triangle_offset(d, j1) - offset for _, j1, offset in runs)
    S = np.zeros((n, d, d))  # each tile's product is added to its rows of the upper triangle
    Ht = np.empty((d, chunk))  # a chunk's samples, transposed, with the row of ones
    if ones:
        Ht[-1] = 1.0
    buffer = np.empty(widest * chunk)  # the tile P^T, reused
    products = np.empty(n * widest)  # a tile's product, reused
    for start in range(0, M, chunk):
        m = min(chunk, M - start)
        Hm = Ht[:, :m]
        Hm[: d - bool(ones)] = H[start : start + m].T  # once per chunk, for all its tiles
        Cm = C[start : start + m].T
        for j0, j1, offset in runs:
            columns = _triangle_offset(d, j1) - offset
            Pt = buffer[: columns * m].reshape(columns, m)  # contiguous for BLAS
            for j in range(j0, j1):
                t = _triangle_offset(d, j) - offset
                np.multiply(Hm[j], Hm[j:], out=Pt[t : t + d - j])  # contiguous rows
            out = products[: n * columns].reshape(n, columns)
            np.matmul(Cm, Pt.T, out=out)  # (n, columns) C^T P^T: faster than Pt @ C
            for j in range(j0, j1):
                t = _triangle_offset(d, j) - offset
                S[:, j, j:] += out[:, t : t + d - j]
    return _mirror_upper(S)


def _per_neuron_sum(H, C, ones) -> np.ndarray:
    """:func:`weighted_outer_sum` as S_i = (H * C[:, i])^T H, by blocks of samples and, in each,
    blocks of about PER_NEURON_WIDTH columns: block j's scaled inputs of all n neurons stacked,
    W[i, j, m] = C[m, i] H[m, j] (n w_j rows of the block's samples), times H[:, j0:] are the
    upper block row of every S_i (the symmetry saves up to half the flops; the rest is
    mirrored). The samples run along the rows of H^T and C^T, so W is written in long rows.
    With ``ones`` the bias row and column are H^T C and the column sums of C."""
    M, k = H.shape
    n = C.shape[1]
    edges = np.linspace(0, k, max(1, round(k / PER_NEURON_WIDTH)) + 1).astype(int)
    widest = int(np.diff(edges).max())
    rows = min(M, max(MIN_CHUNK_ROWS, min(PER_NEURON_ROWS, CHUNK_BYTES // (8 * n * widest))))
    G = np.zeros((n, k, k))  # the upper block rows of every S_i's (k, k) part
    scaled = np.empty(n * widest * rows)  # a block's scaled inputs W, reused
    for start in range(0, M, rows):
        Ht = _long_rows(H.T[:, start : start + rows])  # (k, m)
        Ct = _long_rows(C.T[:, start : start + rows])  # (n, m)
        m = Ht.shape[1]
        for j0, j1 in zip(edges[:-1], edges[1:]):
            W = scaled[: n * (j1 - j0) * m].reshape(n, j1 - j0, m)
            np.multiply(Ct[:, None], Ht[None, j0:j1], out=W)
            G[:, j0:j1, j0:] += (W.reshape(-1, m) @ Ht[j0:].T).reshape(n, j1 - j0, k - j0)
    G = _mirror_upper(G)  # exactly symmetric: rounding differs across j, k
    if not ones:
        return G
    S = np.empty((n, k + 1, k + 1))
    S[:, :k, :k] = G
    HC = (H.T @ C).T  # (n, k): sum_m C[m, i] H[m]
    S[:, :k, k] = HC
    S[:, k, :k] = HC
    S[:, k, k] = column_sums(C)
    return S


def _long_rows(A) -> np.ndarray:
    """A, or a copy of it whose rows are contiguous (a view of a transposed H or C is one
    already when the layer keeps it so, as Conv2d's patches)."""
    return A if A.strides[1] == A.itemsize else np.ascontiguousarray(A)


def _mirror_upper(S) -> np.ndarray:
    """S (n, d, d) with its lower triangle set from the upper, in place."""
    for j in range(S.shape[1] - 1):
        S[:, j + 1 :, j] = S[:, j, j + 1 :]
    return S


def _triangle_offset(d, j) -> int:
    """Column of entry (j, j) in the row-by-row upper triangle: sum of d - i for i < j."""
    return j * d - j * (j - 1) // 2


def _triangle_rows(d, width):
    """Runs [j0, j1) of triangle rows holding at most ``width`` columns (at least one row)."""
    j0 = 0
    for j in range(1, d):
        if _triangle_offset(d, j + 1) - _triangle_offset(d, j0) > width:
            yield j0, j
            j0 = j
    yield j0, d


def biased_outer_operator(H, C):
    """``V -> row i: S_i V[i]`` for S_i = sum_m C[m, i] h~_m h~_m^T, h~_m = [H[m], 1].

    With v_i = [w_i, c_i] (the bias coordinate last), S_i v_i = sum_m C[m, i] u_{m,i} h~_m
    for u_{m,i} = H[m] . w_i + c_i, so a product is two matrix products of H with the
    (n, M) matrix U = (W H^T + c) * C^T, and neither h~ (a copy of H with a column of ones)
    nor S is ever built. C is used as given for every product: compute it once. The
    operator keeps a transposed copy of H (as large as H) for the whole run.

    Parameters
    ----------
    H : ndarray (M, d - 1)
    C : ndarray (M, n)

    Returns
    -------
    callable
        ``product(V)``, V (n, d) -> (n, d).

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[1.0, 2.0]]); C = np.array([[3.0]])
    >>> product = biased_outer_operator(H, C)
    >>> product(np.array([[1.0, 0.0, 0.0]]))  # 3 [1, 2, 1] [1, 2, 1]^T [1, 0, 0]
    array([[3., 6., 3.]])
    """
    HT = np.ascontiguousarray(H.T)  # (d - 1, M): V HT reads it row by row
    CT = np.ascontiguousarray(C.T)  # (n, M)

    def product(V):
        U = V[:, :-1] @ HT  # (n, M): row i is u_{., i}
        U += V[:, -1:]
        U *= CT
        # (n, M) @ (M, d - 1) with the transposed copy: measured 1.0-1.5x faster than
        # H^T ((H V^T) * C) with one or two OpenBLAS threads (benchmarks/README.md)
        return np.hstack([U @ H, U.sum(axis=1)[:, None]])  # (n, d)

    return product

