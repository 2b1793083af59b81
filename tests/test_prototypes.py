"""The prototype layer and Li et al.'s objective: exact derivatives, the isotropy theorem, the
splitting matrix of a prototype with its soft-min penalties, surgery, limits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _nets import loglog_slope, unit_vector
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minisplit as ms
from minisplit.growth.strategies import net2net_widen
from minisplit.layers.prototypes import SIMILARITIES, soft_min

SIMILARITY = st.sampled_from(sorted(SIMILARITIES))


def prototype_net(seed, similarity="gaussian", m=4, d=3, n=7, r1=1.0, r2=0.7, tau=0.3,
                  head=True):
    """encoder 4 -> d (tanh) -> Prototypes(m) -> Dense(m -> 3), a decoder head on the latent;
    random masses, so the penalties' weighting is seen."""
    rng = np.random.default_rng(seed)
    encoder = ms.Dense(4, d, "tanh", seed=rng)
    proto = ms.Prototypes(d, m, similarity=similarity, width=0.8, r1=r1, r2=r2, tau=tau,
                          seed=rng)
    proto.set_buffers([rng.uniform(0.5, 2.0, m)])
    heads = [ms.Head(0, [ms.Dense(d, 4, "sigmoid", seed=rng)], 0.5)] if head else []
    net = ms.Network([encoder, proto, ms.Dense(m, 3, "identity", seed=rng)], "cross_entropy",
                     heads, loss_weight=3.0)
    X = rng.uniform(0, 1, (n, 4))
    return net, X, np.arange(n) % 3


def _gaps(net, X):
    """The smallest gap between the two smallest distances, per row and per column of D."""
    z = net.layers[0].forward(X)[0]
    D = np.sum((z[:, None, :] - net.layers[1].prototypes[None]) ** 2, axis=2)
    gaps = []
    for axis in (0, 1):
        part = np.sort(D, axis=axis)
        if part.shape[axis] > 1:
            gaps.append(np.min(np.take(part, 1, axis) - np.take(part, 0, axis)))
    return min(gaps) if gaps else np.inf


# ---- derivatives of the whole objective ------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), similarity=SIMILARITY, m=st.integers(1, 5),
       d=st.integers(1, 4), n=st.integers(2, 6), r1=st.floats(0, 2), r2=st.floats(0, 2),
       tau=st.sampled_from([0.0, 0.05, 0.3, 2.0]), head=st.booleans())
def test_the_whole_objective_has_exact_derivatives(seed, similarity, m, d, n, r1, r2, tau,
                                                   head):
    net, X, y = prototype_net(seed, similarity, m, d, n, r1, r2, tau, head)
    if tau == 0.0:  # the hard minimum has kinks where two distances tie
        assume(_gaps(net, X) > 1e-3)
    errors = ms.gradcheck.check_network(net, X, y, seed=seed)
    assert max(errors.values()) < ms.gradcheck.TOLERANCE, errors


def test_the_penalties_are_li_et_als_at_tau_zero():
    net, X, y = prototype_net(0, "squared", tau=0.0)
    proto = net.layers[1]
    z = net.layers[0].forward(X)[0]
    D = np.sum((z[:, None, :] - proto.prototypes[None]) ** 2, axis=2)  # (n, m)
    pi = proto.masses
    r1 = pi @ D.min(axis=0) / pi.sum()  # each prototype close to some input
    r2 = D.min(axis=1).mean()  # each input close to some prototype
    assert proto.penalty(proto.forward(z)[1]) == pytest.approx(1.0 * r1 + 0.7 * r2, rel=1e-13)


def test_soft_min_tends_to_the_minimum_and_to_the_weighted_mean():
    rng = np.random.default_rng(0)
    x, pi = rng.uniform(0, 3, (5, 4)), rng.uniform(0.5, 2, 4)
    hard, one_hot = soft_min(x, 0.0, pi)
    np.testing.assert_array_equal(hard, x.min(axis=1))
    for tau in (1e-3, 1e-4):  # the gap is tau log(1 / weight of the minimum): O(tau)
        value, w = soft_min(x, tau, pi)
        assert np.max(np.abs(value - hard)) <= tau * np.log(pi.sum() / pi.min()) + 1e-12
        np.testing.assert_allclose(w, one_hot, atol=1e-6)
    value, w = soft_min(x, 1e6, pi)
    np.testing.assert_allclose(value, x @ pi / pi.sum(), rtol=1e-5)
    np.testing.assert_allclose(w, np.broadcast_to(pi / pi.sum(), w.shape), rtol=1e-5)


# ---- the splitting matrix of a prototype -----------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 4), d=st.integers(1, 4))
def test_squared_distance_prototypes_have_isotropic_splitting_matrices(seed, m, d):
    """The theorem: Hessian_p ||z - p||^2 = 2 I for every sample, so S_j = 2 g_j I with
    g_j = sum_n dL/dD_nj: every direction is an eigenvector, splitting cannot choose one."""
    net, X, y = prototype_net(seed, "squared", m, d, r1=0.0, r2=0.0)
    S = ms.splitting_matrices(net, X, y, 1)
    g = net.backprop(X, y).douts[1].sum(axis=0)  # (m,)
    expected = 2.0 * g[:, None, None] * np.eye(d)
    np.testing.assert_allclose(S, expected, rtol=0, atol=1e-15 * max(1.0, np.max(np.abs(g))))


def _second_difference(net, X, y, j, v, h, L0):
    plus = ms.split(net, 1, [j], v[None], h).loss(X, y)
    minus = ms.split(net, 1, [j], -v[None], h).loss(X, y)
    return (plus + minus - 2.0 * L0) / h**2


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), similarity=SIMILARITY, m=st.integers(1, 4),
       d=st.integers(1, 3), r1=st.floats(0, 2), r2=st.floats(0, 2),
       tau=st.sampled_from([0.1, 0.5, 2.0]))
def test_the_splitting_matrix_is_the_second_derivative_of_the_split_loss(seed, similarity, m, d,
                                                                        r1, r2, tau):
    """v^T S_j v against the Richardson-extrapolated second difference of the loss of the
    split network (masses halved by the surgery), readers and soft-min penalties included."""
    net, X, y = prototype_net(seed, similarity, m, d, r1=r1, r2=r2, tau=tau)
    S = ms.splitting_matrices(net, X, y, 1)
    L0 = net.loss(X, y)
    rng = np.random.default_rng(seed)
    for j in range(m):
        v = unit_vector(rng, d)
        R = [(4 * _second_difference(net, X, y, j, v, h / 2, L0)
              - _second_difference(net, X, y, j, v, h, L0)) / 3 for h in (0.02, 0.01)]
        scale = max(float(np.max(np.abs(np.linalg.eigvalsh(S[j])))), 1e-300)
        floor = 64 * np.finfo(float).eps * max(1.0, abs(L0)) / (0.01 / 4) ** 2
        assert abs(R[1] - v @ S[j] @ v) <= abs(R[0] - R[1]) + floor + 1e-9 * scale


def test_the_eps_squared_law_of_a_gaussian_prototype_split():
    net, X, y = prototype_net(3, "gaussian")
    values, vectors = ms.splitting_indices(net, X, y, 1)
    j = int(np.argmin(values))
    L0 = net.loss(X, y)
    eps = np.array([0.02, 0.01, 0.005, 0.0025])
    change = np.array([ms.split(net, 1, [j], vectors[j:j + 1], e).loss(X, y) - L0 for e in eps])
    ratio = change / (0.5 * eps**2 * values[j])
    # ratio - 1 = c eps^2 + O(eps^4): each halving of eps divides it by about 4
    np.testing.assert_allclose((ratio[:-1] - 1) / (ratio[1:] - 1), 4.0, rtol=0.05)
    assert abs(ratio[-1] - 1) < 1e-3
    remainder = change - 0.5 * eps**2 * values[j]
    assert abs(loglog_slope(eps, remainder) - 4.0) < 0.3


def test_matrix_free_prototype_indices_match_dense():
    net, X, y = prototype_net(4, "log")
    dense = ms.splitting_indices(net, X, y, 1)
    free = ms.splitting_indices(net, X, y, 1, solver="matrix_free")
    np.testing.assert_allclose(free[0], dense[0], rtol=1e-9, atol=1e-12)


def test_a_hard_min_penalty_has_no_splitting_matrix():
    net, X, y = prototype_net(0, tau=0.0)
    with pytest.raises(ValueError, match="tau must be > 0 for splitting matrices"):
        ms.splitting_matrices(net, X, y, 1)
    free, _, _ = prototype_net(0, tau=0.0, r1=0.0, r2=0.0)  # no penalty: nothing to refuse
    assert ms.splitting_matrices(free, X, y, 1).shape == (4, 3, 3)


# ---- surgery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", sorted(SIMILARITIES))
def test_every_prototype_surgery_keeps_the_function(similarity):
    net, X, y = prototype_net(5, similarity)
    F, L = net.forward(X), net.loss(X, y)
    v = np.ones((2, 3)) / np.sqrt(3)
    for grown in (ms.split(net, 1, [0, 2], v, 0.0), net2net_widen(net, 1, [3], 0.0, 0)):
        np.testing.assert_allclose(grown.forward(X), F, rtol=0, atol=1e-13)
        assert grown.loss(X, y) == pytest.approx(L, rel=1e-13)  # penalties included
        masses = grown.layers[1].masses
        assert masses.sum() == pytest.approx(net.layers[1].masses.sum(), rel=1e-14)
    fresh = ms.add_neurons(net, 1, np.full((1, 3), 0.5), np.zeros((1, 3, 1)))
    np.testing.assert_allclose(fresh.forward(X), F, rtol=0, atol=1e-13)  # zero W column
    assert fresh.layers[1].masses[-1] == pytest.approx(net.layers[1].masses.mean())


def test_a_signed_split_of_a_prototype_is_refused():
    """Its negative offspring weight would make a mass negative, and the soft minimum of R1
    and R2 needs positive masses."""
    net, X, y = prototype_net(5)
    with pytest.raises(ValueError, match="signed split needs positive weights"):
        ms.signed_split(net, 1, [1], np.ones((1, 3)) / np.sqrt(3), 0.1)


def test_a_split_halves_the_parents_mass():
    net, X, y = prototype_net(6)
    pi = net.layers[1].masses
    grown = ms.split(net, 1, [2], np.ones((1, 3)) / np.sqrt(3), 0.1)
    np.testing.assert_allclose(grown.layers[1].masses, [*pi[:2], pi[2] / 2, pi[3], pi[2] / 2])


def test_a_prototype_network_saves_and_loads_with_its_masses(tmp_path):
    net, X, y = prototype_net(7)
    ms.save(net, tmp_path / "p.npz")
    back = ms.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.layers[1].masses, net.layers[1].masses)
    assert back.loss(X, y) == net.loss(X, y)


# ---- bad input -------------------------------------------------------------------------------

BAD = [
    (lambda: ms.Prototypes(3, 0), ValueError, "n_prototypes must be an integer >= 1, got 0"),
    (lambda: ms.Prototypes(3, 2.5), TypeError, "n_prototypes must be an integer"),
    (lambda: ms.Prototypes(3, 2, width=0.0), ValueError, "width must be a finite number > 0"),
    (lambda: ms.Prototypes(3, 2, tau=-1.0), ValueError, "tau must be a finite number >= 0"),
    (lambda: ms.Prototypes(3, 2, r1=-0.5), ValueError, "r1 must be a finite number >= 0"),
    (lambda: ms.Prototypes(3, 2, r2="1"), TypeError, "r2 must be a finite number >= 0"),
    (lambda: ms.Prototypes(3, 2, similarity="cosine"), ValueError, "similarity must be one of"),
    (lambda: ms.Prototypes(3, 2).set_buffers([np.zeros(2)]), ValueError, "masses must be > 0"),
    (lambda: ms.Prototypes(3, 2).set_buffers([np.ones(3)]), ValueError,
     r"masses must have shape \(2,\)"),
]


@pytest.mark.parametrize("call, error, words", BAD)
def test_bad_prototype_settings_are_refused(call, error, words):
    with pytest.raises(error, match=words):
        call()
