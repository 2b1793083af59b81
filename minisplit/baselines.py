"""Growth strategies other than splitting: the surgeries the comparisons need (MATH.md section 7).

Every strategy appends neurons to one layer of a network and returns a new
network (the input is untouched), through the same primitive as splitting,
:func:`minisplit.splitting.regrow` / :func:`minisplit.splitting.add_neurons`.
The growth loop (:mod:`minisplit.growth`) decides *when* and *how many*;
these functions only decide *what* the new neurons are.

random_split  theta +- eps v, outputs 1/2, 1/2 (``splitting.split``), v uniform on
              the unit sphere (:func:`random_directions`).
net2net       copy theta_i (+ noise on the copy only), reader weights on i halved
              and copied: function preserved up to the noise.
new_neurons   fresh incoming weights (the layer's own initialiser), zero reader
              weights: function preserved exactly.
gradmax       zero incoming weights, reader weights = scale * top left singular
              vectors of M = sum_n delta_n h~_n^T: function preserved exactly when
              f(0) = 0, and the new neurons' gradient norm is as large as possible.
fixed         the final architecture, re-initialised (:func:`reinitialized`).

:func:`operations` turns one round's chosen neurons into per-layer surgeries for
any strategy (splitting included), in the order the growth loop applies them.

Naming as in :mod:`minisplit.layers.base`: ``theta`` (n, d) are neuron rows,
``W_in`` (n, ...) the reader's weights on each unit (``input_weights``).
"""

from __future__ import annotations

import numpy as np

from minisplit._validate import check_nonnegative_int, make_rng
from minisplit.layers.dense import Dense
from minisplit.network import Network
from minisplit.splitting import add_neurons, reader_index, regrow, signed_split, split

#: Every strategy :func:`minisplit.growth.grow` accepts ("fixed" is :func:`reinitialized`).
STRATEGIES = ("splitting", "random_split", "net2net", "new_neurons", "gradmax")
#: Strategies whose surgery has a step size eps.
SPLIT_STRATEGIES = ("splitting", "random_split")


def random_directions(m, d, rng) -> np.ndarray:
    """``m`` directions drawn uniformly on the unit sphere of R^d.

    A standard normal vector divided by its norm is uniform on the sphere
    (the normal density is rotation invariant).

    Returns
    -------
    ndarray (m, d), unit rows.

    Examples
    --------
    >>> V = random_directions(3, 4, np.random.default_rng(0))
    >>> np.allclose(np.linalg.norm(V, axis=1), 1.0)
    True
    """
    G = make_rng(rng).standard_normal((check_nonnegative_int(m, "m"), d))  # (m, d)
    return G / np.linalg.norm(G, axis=1, keepdims=True)


def _layer_and_reader(net, layer):
    obj = net.layers[layer]
    r = reader_index(net, layer)  # raises for the output layer and non-linear readers
    return obj, r


def net2net_widen(net, layer, neurons, noise, rng) -> Network:
    """Net2Net widening: copy neurons, halve and copy their outgoing weights, perturb the copy.

    For each chosen neuron i (theta_i, reader weights w_i)::

        neuron i   : theta_i              reader weights w_i / 2   (in place)
        new neuron : theta_i + noise * e  reader weights w_i / 2   (appended), e ~ N(0, I)

    With ``noise = 0`` the network computes the same function, but the two
    copies have equal parameters and equal gradients, so they stay equal under
    any optimiser that treats them alike: the width grew, the function class
    did not. Noise on the copy only breaks the tie, changing the function by
    O(noise); noise on both would move the parent as well.

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer with a linear reader.
    neurons : array of int (m,)
        Distinct neurons to copy.
    noise : float
        Standard deviation of the perturbation of the copies, >= 0.
    rng : int or Generator

    Returns
    -------
    Network
        ``m`` more neurons in ``layer``; appended neuron j copies ``neurons[j]``.

    References
    ----------
    T. Chen, I. Goodfellow, J. Shlens, "Net2Net: Accelerating Learning via
    Knowledge Transfer", ICLR 2016 (arXiv:1511.05641).
    """
    obj, r = _layer_and_reader(net, layer)
    neurons = np.asarray(neurons, dtype=np.int64)
    if noise < 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be a non-negative finite number, got {noise!r}")
    theta = obj.neuron_params()  # (n, d)
    W_in = net.layers[r].input_weights(obj.n_neurons)  # (n, ...)
    copies = theta[neurons] + noise * make_rng(rng).standard_normal((neurons.size, theta.shape[1]))
    W_in[neurons] *= 0.5
    return regrow(net, layer, np.vstack([theta, copies]), np.concatenate([W_in, W_in[neurons]]))


def fresh_neurons(layer_obj, m, rng) -> np.ndarray:
    """``m`` neuron rows drawn by the layer's own initialiser (a new layer of the same config).

    Returns
    -------
    ndarray (m, neuron_dim)
    """
    rng = make_rng(rng)
    rows, total = [], 0
    while total < m:
        fresh = type(layer_obj)(**layer_obj.config(), seed=rng).neuron_params()  # (n, d)
        rows.append(fresh)
        total += fresh.shape[0]
    return np.vstack(rows)[:m] if rows else np.zeros((0, layer_obj.neuron_dim))


def new_neurons(net, layer, m, rng) -> Network:
    """Append ``m`` freshly initialised neurons whose outgoing weights are zero.

    Incoming weights come from the layer's initialiser (Dense: W ~ N(0, 1/n_in),
    b = 0); the reader's weights on them are zero, so the network computes the
    same function. Their incoming weights get no gradient until the outgoing
    ones move away from zero; the outgoing ones get dL/dw = sum_n delta_n a_n.

    Returns
    -------
    Network
    """
    obj, r = _layer_and_reader(net, layer)
    m = check_nonnegative_int(m, "m")
    W_in = net.layers[r].input_weights(obj.n_neurons)  # (n, ...)
    return add_neurons(net, layer, fresh_neurons(obj, m, rng), np.zeros((m,) + W_in.shape[1:]))


def check_gradmax(net, layer) -> None:
    """Raise ValueError unless GradMax can grow ``layer`` (why not, otherwise).

    GradMax needs (i) a Dense layer read directly by a Dense layer (M below is
    written for that case) and (ii) an activation with f(0) = 0, so that a
    neuron with zero incoming weights outputs 0 and the function is preserved,
    and f'(0) != 0, so that its incoming weights receive a gradient.
    """
    obj, r = _layer_and_reader(net, layer)
    if not isinstance(obj, Dense) or r != layer + 1 or not isinstance(net.layers[r], Dense):
        raise ValueError(
            f"gradmax grows a Dense layer read directly by a Dense layer; layer {layer} is "
            f"{type(obj).__name__} read by layer {r} ({type(net.layers[r]).__name__})"
        )
    zero = np.zeros(1)
    f0, df0 = float(obj.act.f(zero)[0]), float(obj.act.df(zero)[0])
    if f0 != 0.0:
        raise ValueError(
            f"gradmax needs f(0) = 0 so that a neuron with zero incoming weights adds nothing; "
            f"{obj.act.name}(0) = {f0:g}. Use tanh or swish."
        )
    if df0 == 0.0:
        raise ValueError(
            f"gradmax needs f'(0) != 0, otherwise zero incoming weights get zero gradient "
            f"forever; {obj.act.name}'(0) = 0. Use tanh or swish."
        )


def gradmax_matrix(net, X, y, layer) -> np.ndarray:
    """M = sum_n delta_n h~_n^T, the gradient a new neuron's incoming weights would feel.

    ``delta_n = dL/dz_{l+1}(x_n)`` (n_out_reader,) is the gradient of the mean
    loss with respect to the reader's pre-activation, ``h~_n = [h_n; 1]`` the
    grown layer's input with the bias entry appended (theta includes the bias).

    Returns
    -------
    ndarray (reader n_out, layer neuron_dim)
    """
    check_gradmax(net, layer)
    bp = net.backprop(X, y)
    H, _ = bp.caches[layer]  # (N, n_in): the grown layer's input
    reader = net.layers[layer + 1]
    _, Z_r = bp.caches[layer + 1]
    delta = reader.act.df(Z_r) * bp.douts[layer + 1]  # (N, n_out_r)
    return delta.T @ np.hstack([H, np.ones((H.shape[0], 1))])  # (n_out_r, n_in + 1)


def gradmax_neurons(net, X, y, layer, m, scale) -> Network:
    """GradMax: new neurons with zero incoming weights and gradient-maximising outgoing ones.

    A new neuron j with incoming weights theta_j = 0 and reader weights u_j
    outputs f(0) = 0, so the function is unchanged. Its incoming gradient is

        dL/dtheta_j = sum_n (u_j . delta_n) f'(0) h~_n = f'(0) M^T u_j,

    so maximising sum_j ||dL/dtheta_j||^2 over ||u_j|| = scale, u_j orthogonal,
    gives u_j = scale * (j-th left singular vector of M) (docs/growth.md).

    Parameters
    ----------
    net, X, y
        The network and the training data the gradient is taken on.
    layer : int
        A Dense layer read directly by a Dense layer, f(0) = 0, f'(0) != 0.
    m : int
        Number of new neurons wanted. At most ``rank(M)`` are added: a
        singular vector with singular value 0 would give a neuron whose
        incoming and outgoing gradients both vanish, one that never learns.
    scale : float
        Norm of each new outgoing weight vector, > 0.

    Returns
    -------
    Network
        With ``min(m, rank(M))`` more neurons in ``layer``.

    References
    ----------
    U. Evci, B. van Merrienboer, T. Unterthiner, M. Vladymyrov, F. Pedregosa,
    "GradMax: Growing Neural Networks using Gradient Information", ICLR 2022
    (arXiv:2201.05125).
    """
    m = check_nonnegative_int(m, "m")
    if not scale > 0 or not np.isfinite(scale):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    M = gradmax_matrix(net, X, y, layer)  # (n_out_r, d)
    U, _, _ = np.linalg.svd(M, full_matrices=False)  # U (n_out_r, r), singular values descending
    m = min(m, int(np.linalg.matrix_rank(M)))
    d = net.layers[layer].neuron_dim
    out_weights = (scale * U[:, :m].T)[:, :, None]  # (m, n_out_r, 1): Dense reader, block 1
    return add_neurons(net, layer, np.zeros((m, d)), out_weights)


def reinitialized(net, rng) -> Network:
    """The same architecture with fresh weights from each layer's initialiser ("fixed" baseline).

    Examples
    --------
    >>> from minisplit import mlp
    >>> net = mlp([2, 5, 1], seed=0)
    >>> fresh = reinitialized(net, np.random.default_rng(1))
    >>> fresh.layers[0].W.shape, bool(np.all(fresh.layers[0].W != net.layers[0].W))
    ((5, 2), True)
    """
    rng = make_rng(rng)
    layers = [
        type(layer)(**layer.config(), seed=rng) if layer.param_names else layer.copy()
        for layer in net.layers
    ]
    return Network(layers, net.loss_fn.name)


# ---- one round of growth, any strategy -------------------------------------------------------


def operations(strategy, net, X, y, plan, rng, directions=None, alpha=None, noise=0.0, scale=0.01):
    """The per-layer surgeries of one growth round, deepest layer first.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    net, X, y
        The network before the round and the training data (GradMax's gradient).
    plan : dict {layer: ndarray of int}
        The neurons the selection rule chose. ``"splitting"`` splits exactly
        these; every other strategy grows the *same number* per layer its own way
        (random neurons for random_split and net2net, new neurons otherwise).
    rng : Generator
        Drawn from here, in layer order, before any surgery runs: the random
        neurons, directions and seeds, so an operation gives the same result
        each time it is called (the eps line search calls it once per eps).
    directions : dict {layer: ndarray (n, d)} or None
        Unit directions per neuron (v_min, or v_max for a signed split), for "splitting".
    alpha : float or None
        Not None: signed splits with negative weight -alpha ("splitting" only).
    noise, scale : float
        Net2Net's copy noise; GradMax's outgoing weight norm.

    Returns
    -------
    list of (layer, neurons, V, op)
        ``neurons`` (m,) and ``V`` (m, d) are the split neurons and directions
        (None where they do not apply); ``op(net, eps) -> (new_net, parents)``
        with ``parents`` as ``optimizer.after_surgery`` takes them. Apply in order,
        each to the previous one's output: deeper layers first, so the directions
        computed on ``net`` keep their dimension (``splitting.split_many``).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    out = []
    for index in sorted(plan, reverse=True):
        chosen, obj = np.asarray(plan[index], dtype=np.int64), net.layers[index]
        neurons, V, seed = None, None, None
        if strategy == "splitting":
            neurons, V = chosen, directions[index][chosen]  # (m, d)
        elif strategy in ("random_split", "net2net"):
            neurons = np.sort(rng.choice(obj.n_neurons, size=chosen.size, replace=False))
        if strategy == "random_split":
            V = random_directions(chosen.size, obj.neuron_dim, rng)  # (m, d)
        if strategy in ("net2net", "new_neurons"):
            seed = int(rng.integers(2**63))
        op = _operation(strategy, index, chosen.size, neurons, V, seed, X, y, alpha, noise, scale)
        out.append((index, neurons, V, op))
    return out


def _operation(strategy, index, m, neurons, V, seed, X, y, alpha, noise, scale):
    """``op(net, eps) -> (new_net, parents)`` growing layer ``index`` (see :func:`operations`)."""

    def op(net, eps):
        if strategy in SPLIT_STRATEGIES and alpha is None:
            return split(net, index, neurons, V, eps), neurons
        if strategy in SPLIT_STRATEGIES:
            return signed_split(net, index, neurons, V, eps, alpha), neurons
        if strategy == "net2net":
            return net2net_widen(net, index, neurons, noise, np.random.default_rng(seed)), neurons
        if strategy == "new_neurons":
            new = new_neurons(net, index, m, np.random.default_rng(seed))
        else:
            new = gradmax_neurons(net, X, y, index, m, scale)
        added = new.layers[index].n_neurons - net.layers[index].n_neurons
        return new, np.full(added, -1, dtype=np.int64)  # brand-new neurons have no parent

    return op
