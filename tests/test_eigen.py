"""Extreme eigenpairs: batched Lanczos against ``eigh``, matrix-free against dense S.

Lanczos stops a neuron when its Ritz residual ||S x - theta x|| is at most
tol * scale (scale ~ ||S||), and some eigenvalue then lies within that residual;
the eigenvector error is at most residual / gap. So with tol = 1e-10 the tests ask
eigenvalues to 1e-9 * ||S|| and, where the gap to the next eigenvalue is g,
eigenvectors to 10 * tol * ||S|| / g, up to sign.
"""

import numpy as np
import pytest
from _nets import ARCH_LAYERS, LOSS_NAMES, problems
from hypothesis import given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit.splitting.eigen import dense_extreme, fix_sign, lanczos_extreme

TOL = 1e-10
seeds = st.integers(0, 2**32 - 1)


def with_spectrum(rng, spectrum):
    """A symmetric matrix Q diag(spectrum) Q^T with a random orthogonal Q."""
    Q, _ = np.linalg.qr(rng.standard_normal((len(spectrum), len(spectrum))))
    return (Q * spectrum) @ Q.T


def batched_matvec(S):
    return lambda V: np.einsum("nij,nj->ni", S, V)


def assert_extreme_pairs(S, values, vectors, which, tol=TOL):
    """values/vectors are the ``which`` eigenpairs of each S[i], to the Lanczos bounds."""
    exact, exact_vectors = np.linalg.eigh(S)  # (n, d), (n, d, d)
    k = 0 if which == "min" else -1
    for i in range(S.shape[0]):
        scale = max(np.abs(exact[i]).max(), 1e-300)
        assert abs(values[i] - exact[i, k]) <= 10 * tol * scale, (i, values[i], exact[i, k])
        assert np.linalg.norm(vectors[i]) == pytest.approx(1.0, abs=1e-12)
        residual = S[i] @ vectors[i] - values[i] * vectors[i]
        assert np.linalg.norm(residual) <= 10 * tol * scale + 1e-13 * scale
        gap = abs(exact[i, k] - exact[i, 1 if k == 0 else -2]) if S.shape[1] > 1 else np.inf
        if gap > 1e-6 * scale:
            w = exact_vectors[i, :, k]
            error = min(np.linalg.norm(vectors[i] - w), np.linalg.norm(vectors[i] + w))
            assert error <= 10 * tol * scale / gap + 1e-12, (i, error, gap)


# ------------------------------------------------------------ Lanczos on known spectra


@pytest.mark.parametrize("which", ["min", "max"])
@settings(max_examples=10, deadline=None)
@given(seed=seeds, d=st.integers(1, 12), n=st.integers(1, 6))
def test_lanczos_random_spectra(which, seed, d, n):
    rng = np.random.default_rng(seed)
    S = np.stack([with_spectrum(rng, rng.uniform(-3, 3, d)) for _ in range(n)])
    values, vectors, iterations = lanczos_extreme(
        batched_matvec(S), n, d, which, tol=TOL, seed=seed
    )
    assert_extreme_pairs(S, values, vectors, which)
    assert 1 <= iterations <= d
    np.testing.assert_array_equal(vectors, fix_sign(vectors))


@pytest.mark.parametrize("which", ["min", "max"])
def test_lanczos_repeated_low_rank_and_zero(which):
    # One batch, so neurons that finish early must not disturb the others:
    #   repeated eigenvalues: 3 distinct values, the Krylov space stops at dimension 3;
    #   exact rank 2: the Krylov space is {null part of q0} + 2 eigenvectors (dimension 3);
    #   S = 0 (a neuron whose g is zero everywhere): lambda = 0 at once;
    #   and a generic matrix that needs all d steps.
    rng = np.random.default_rng(0)
    d = 10
    spectra = [
        [-2.0] * 4 + [1.0] * 3 + [5.0] * 3,
        [0.0] * 8 + [-4.0, 3.0],
        [0.0] * d,
        rng.uniform(-3, 3, d),
    ]
    S = np.stack([with_spectrum(rng, s) for s in spectra])
    values, vectors, iterations = lanczos_extreme(batched_matvec(S), 4, d, which, tol=TOL)
    expected = [min(s) if which == "min" else max(s) for s in spectra]
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9 * 5)
    assert_extreme_pairs(S, values, vectors, which)

    # Alone, the low-rank and repeated spectra stop early (Krylov space exhausted).
    for s, distinct in ((spectra[0], 3), (spectra[1], 3), (spectra[2], 1)):
        single = with_spectrum(rng, np.array(s))[None]
        value, _, steps = lanczos_extreme(batched_matvec(single), 1, d, which, tol=0.0)
        assert steps <= distinct
        assert value[0] == pytest.approx(min(s) if which == "min" else max(s), abs=1e-12 * 5)


def test_lanczos_max_iter_and_which():
    rng = np.random.default_rng(1)
    S = with_spectrum(rng, np.linspace(-1, 1, 8))[None]
    with pytest.raises(ValueError, match="which"):
        lanczos_extreme(batched_matvec(S), 1, 8, which="both")
    # a capped Krylov space gives a Ritz value inside the spectrum, above lambda_min
    value, _, steps = lanczos_extreme(batched_matvec(S), 1, 8, "min", tol=0.0, max_iter=2)
    assert steps == 2 and -1.0 <= value[0] <= 1.0


def test_dense_extreme_and_fix_sign():
    S = np.array([[[2.0, 0.0], [0.0, -3.0]], [[1.0, 1.0], [1.0, 1.0]]])
    values, vectors = dense_extreme(S, "min")
    np.testing.assert_allclose(values, [-3.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(vectors, [[0.0, 1.0], [2**-0.5, -(2**-0.5)]], atol=1e-15)
    values, vectors = dense_extreme(S, "max")
    np.testing.assert_allclose(values, [2.0, 2.0])
    np.testing.assert_allclose(vectors, [[1.0, 0.0], [2**-0.5, 2**-0.5]])
    # the largest-magnitude entry becomes positive; a tie keeps the first one
    np.testing.assert_array_equal(
        fix_sign([[0.1, -0.9], [-0.5, 0.5], [0.0, 0.0]]), [[-0.1, 0.9], [0.5, -0.5], [0.0, 0.0]]
    )


# --------------------------------------------------- the layers' S, S v and the indices


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("arch, layer", ARCH_LAYERS, ids=str)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_S_is_symmetric_and_matvec_is_S_times_v(arch, layer, loss, data):
    problem = data.draw(problems([arch], losses=[loss]))
    net, X, y, seed = problem.net, problem.X, problem.y, problem.seed
    bp = net.backprop(X, y)
    obj, dA, cache = net.layers[layer], bp.douts[layer], bp.caches[layer]
    S = obj.splitting_matrices(dA, cache)
    assert S.shape == (obj.n_neurons, obj.neuron_dim, obj.neuron_dim)
    np.testing.assert_array_equal(S, S.transpose(0, 2, 1))
    if not ms.splitting.carriers(net, layer):
        # through a depthwise layer the network's S adds that layer's curvature term
        # (docs/splitting.md, "Separable blocks"; tests/test_depthwise.py)
        np.testing.assert_array_equal(S, ms.splitting_matrices(net, X, y, layer))
    V = np.random.default_rng(seed).standard_normal((obj.n_neurons, obj.neuron_dim))
    SV = np.einsum("nij,nj->ni", S, V)
    scale = np.abs(S).sum(axis=2).max() * np.abs(V).max()  # bounds |S v| entry-wise
    np.testing.assert_allclose(obj.splitting_matvec(dA, cache, V), SV, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("which", ["min", "max"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("arch, layer", ARCH_LAYERS, ids=str)
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_matrix_free_indices_match_dense(arch, layer, loss, which, data):
    problem = data.draw(problems([arch], losses=[loss]))
    net, X, y, seed = problem.net, problem.X, problem.y, problem.seed
    S = ms.splitting_matrices(net, X, y, layer)
    dense_values, dense_vectors = ms.splitting_indices(net, X, y, layer, which=which)
    values, vectors = ms.splitting_indices(
        net, X, y, layer, which=which, solver="matrix_free", tol=TOL, seed=seed
    )
    assert_extreme_pairs(S, dense_values, dense_vectors, which, tol=1e-14)
    assert_extreme_pairs(S, values, vectors, which)
    np.testing.assert_array_equal(vectors, fix_sign(vectors))
    # and directly against each other, up to sign, where the gap pins the vector down
    spectra = np.linalg.eigvalsh(S)  # (n, d)
    k, other = (0, 1) if which == "min" else (-1, -2)
    scale = np.abs(spectra).max(axis=1)
    if S.shape[1] > 1:
        gap = np.abs(spectra[:, k] - spectra[:, other])
    else:  # an RBF on one input: S_i is 1 x 1, its eigenvector +-1 whatever the gap
        gap = np.full(S.shape[0], np.inf)
    np.testing.assert_allclose(values, dense_values, rtol=0, atol=1e-9 * scale.max())
    for i in np.flatnonzero(gap > 1e-6 * scale):
        cosine = abs(vectors[i] @ dense_vectors[i])
        assert 1.0 - cosine <= (10 * TOL * scale[i] / gap[i]) ** 2 + 1e-12
