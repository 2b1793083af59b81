"""Growth strategies: one record each, in one table (docs/growth.md, "Strategies").

A growth round chooses how many neurons each grown layer gets (the selection rule on
the splitting indices, :mod:`minisplit.growth.selection`); a *strategy* decides what
the new neurons are. Each is one :class:`Strategy` record of :data:`STRATEGIES`:

splitting     split the chosen neurons along v_min (or signed splits along v_max):
              theta +- eps v, outputs 1/2, 1/2 (:func:`minisplit.split`).
random_split  split as many random neurons along random unit directions.
net2net       copy as many random neurons (+ noise on the copy only), their reader
              weights halved and copied: the function is preserved up to the noise.
new_neurons   fresh incoming weights (the layer's own initialiser), zero reader
              weights: the function is preserved exactly.
principal_split   (prototypes, RBF) split along the principal axis of the inputs nearest
              to the prototype: the LBG / k-means split.
new_prototype (prototypes, RBF) new neurons at the encodings of random training samples,
              zero reader weights: the function is preserved (a penalty on the layer's own
              outputs is not, so no prediction is recorded).
gradmax       zero incoming weights, reader weights = scale * top left singular
              vectors of M = sum_n delta_n h~_n^T: the function is preserved exactly
              when f(0) = 0, and the new neurons' gradient norm is as large as possible.

Adding a strategy is adding one record: a ``plan`` function that draws whatever the
strategy needs from the round's Generator and returns a :class:`Growth` (the surgery
of one layer), and the record's properties. The growth loop (:mod:`minisplit.growth.loop`)
reads nothing else. Every surgery goes through :func:`minisplit.splitting.regrow`.

Naming as in :mod:`minisplit.layers.base`: ``theta`` (n, d) are neuron rows,
``out_weights`` (n, ...) the reader's weights on each unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_int, check_real, make_rng
from minisplit.layers.dense import Dense
from minisplit.layers.prototypes import Prototypes
from minisplit.layers.rbf import RBF
from minisplit.network import Network
from minisplit.splitting import matrices, surgery
from minisplit.splitting.eigen import fix_sign

# ---- the surgeries ---------------------------------------------------------------------------


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
    G = make_rng(rng, "rng").standard_normal((check_int(m, "m", low=0), d))  # (m, d)
    return G / np.linalg.norm(G, axis=1, keepdims=True)


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
    theta, out_weights = surgery.grown_parts(net, layer)  # (n, d), (n, ...)
    neurons = np.asarray(neurons, dtype=np.int64)
    noise = check_real(noise, "noise", low=0)
    copies = theta[neurons] + noise * make_rng(rng, "rng").standard_normal(
        (neurons.size, theta.shape[1])
    )
    out_weights[neurons] *= 0.5
    own = net.layers[layer].neuron_weights()  # halved and copied like the reader's weights
    if own is not None:
        own[neurons] *= 0.5
        own = np.concatenate([own, own[neurons]])
    parents = np.concatenate([np.arange(theta.shape[0]), neurons])  # copies keep BN's state
    return surgery.regrow(
        net, layer, np.vstack([theta, copies]), np.concatenate([out_weights, out_weights[neurons]]),
        own, parents,
    )


def fresh_neurons(obj, m, rng) -> np.ndarray:
    """``m`` neuron rows drawn by the layer's own initialiser (a new layer of the same config).

    Returns
    -------
    ndarray (m, neuron_dim)
    """
    rng = make_rng(rng, "rng")
    rows, total = [], 0
    while total < m:
        fresh = type(obj)(**obj.config(), seed=rng).neuron_params()  # (n, d)
        rows.append(fresh)
        total += fresh.shape[0]
    return np.vstack(rows)[:m] if rows else np.zeros((0, obj.neuron_dim))


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
    m = check_int(m, "m", low=0)
    _, out_weights = surgery.grown_parts(net, layer)
    zeros = np.zeros((m,) + out_weights.shape[1:])
    return surgery.add_neurons(net, layer, fresh_neurons(net.layers[layer], m, rng), zeros)


def check_gradmax(net, layer) -> None:
    """Raise ValueError unless GradMax can grow ``layer`` (why not, otherwise).

    GradMax needs (i) a Dense layer read directly by a Dense layer (M below is
    derived for that case: a type requirement of the derivation, not of a role) and
    (ii) an activation with f(0) = 0, so that a neuron with zero incoming weights
    outputs 0 and the function is preserved, and f'(0) != 0, so that its incoming
    weights receive a gradient.
    """
    r = surgery.reader_index(net, layer)  # raises for the output layer and non-linear readers
    obj, reader = net.layers[layer], net.layers[r]
    if not isinstance(obj, Dense) or r != layer + 1 or not isinstance(reader, Dense):
        raise ValueError(
            f"gradmax grows a Dense layer read directly by a Dense layer; layer {layer} is "
            f"{type(obj).__name__} read by layer {r} ({type(reader).__name__})"
        )
    if obj.batch_norm or reader.batch_norm:  # M is derived for z = W h + b, without BN
        raise ValueError(
            f"gradmax grows Dense layers without batch norm; layer {layer} or its reader "
            f"(layer {r}) is batch-normalised"
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
    H = bp.caches[layer][0]  # (N, n_in): the grown layer's input
    reader = net.layers[layer + 1]
    Z_r = bp.caches[layer + 1][1]  # the reader's pre-activation
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
    m = check_int(m, "m", low=0)
    scale = check_real(scale, "scale", low=0, low_open=True)
    M = gradmax_matrix(net, X, y, layer)  # (n_out_r, d)
    U, _, _ = np.linalg.svd(M, full_matrices=False)  # U (n_out_r, r), singular values descending
    m = min(m, int(np.linalg.matrix_rank(M)))
    d = net.layers[layer].neuron_dim
    out_weights = (scale * U[:, :m].T)[:, :, None]  # (m, n_out_r, 1): Dense reader, block 1
    return surgery.add_neurons(net, layer, np.zeros((m, d)), out_weights)


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
    rng = make_rng(rng, "rng")
    layers = [
        type(obj)(**obj.config(), seed=rng) if obj.param_names else obj.copy()
        for obj in net.all_layers
    ]
    return net._rebuilt(layers)


def check_input_space(net, layer) -> None:
    """Raise ValueError unless ``layer``'s neurons are points of its input space (prototypes,
    RBF centres): a new neuron can then be placed at a sample's encoding."""
    surgery.reader_index(net, layer)
    obj = net.layers[layer]
    if not isinstance(obj, (Prototypes, RBF)):
        raise ValueError(
            f"this strategy grows a layer whose neurons are points of its input space "
            f"(Prototypes, RBF); layer {layer} is {type(obj).__name__}"
        )


def layer_inputs(net, X, layer) -> np.ndarray:
    """The input of layer ``layer`` for the samples X (the encodings z, for a prototype layer)."""
    A = np.asarray(X, dtype=np.float64)
    for obj in net.layers[:layer]:
        A, _ = obj.forward(A)
    return A


def new_prototypes(net, X, layer, samples) -> Network:
    """Append one neuron at the encoding of each of ``samples`` (indices into X), read with
    zero weights: the function is unchanged (a penalty on the layer's own outputs is not)."""
    check_input_space(net, layer)
    theta = layer_inputs(net, np.asarray(X)[np.asarray(samples, dtype=np.int64)], layer)
    _, out_weights = surgery.grown_parts(net, layer)
    zeros = np.zeros((theta.shape[0],) + out_weights.shape[1:])
    return surgery.add_neurons(net, layer, theta, zeros)


def principal_axes(net, X, layer, neurons) -> np.ndarray:
    """The LBG / k-means split direction of each neuron: the principal axis of the inputs
    nearest to it (hard assignment), (m, d) unit rows.

    A neuron that owns fewer than two inputs takes the principal axis of all of them.
    """
    check_input_space(net, layer)
    Z = layer_inputs(net, X, layer)  # (N, d)
    theta = net.layers[layer].neuron_params()  # (n, d)
    D = np.sum((Z[:, None, :] - theta[None]) ** 2, axis=2)  # (N, n)
    owner = np.argmin(D, axis=1)
    out = []
    for j in np.asarray(neurons, dtype=np.int64):
        mine = Z[owner == j] if np.sum(owner == j) >= 2 else Z
        delta = mine - theta[j]
        _, vectors = np.linalg.eigh(delta.T @ delta)
        out.append(vectors[:, -1])
    return fix_sign(np.array(out).reshape(len(out), theta.shape[1]))


# ---- the records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """What a strategy may look at when it plans one round (built by the growth loop).

    Attributes
    ----------
    net : Network
        The network before the round's surgery.
    X, y : arrays
        The training data.
    chosen : dict {layer: ndarray of int}
        The neurons the selection rule chose (within the budget); a strategy other
        than splitting grows the same *number* per layer its own way.
    values : dict {layer: ndarray (n,)}
        Every neuron's second-order coefficient c_i (dL = (eps^2/2) c_i for its split):
        lambda_min, or -alpha/(1 + alpha) lambda_max for a signed split.
    directions : dict {layer: ndarray (n, d)}
        v_min (or v_max for signed splits) of every neuron.
    alpha : float or None
        Not None: this round makes signed splits with negative weight -alpha.
    config : GrowthConfig
        The run's settings (noise, scale, solver, relu_surrogate, ...).
    """

    net: Network
    X: np.ndarray
    y: np.ndarray
    chosen: dict
    values: dict
    directions: dict
    alpha: float | None
    config: object


@dataclass(frozen=True)
class Growth:
    """One layer's planned surgery.

    ``neurons`` (m,) and ``directions`` (m, d) are the existing neurons split or
    copied and the split directions (None where they do not apply);
    ``apply(net, eps) -> (new_net, parents)`` performs it, ``parents`` one per
    appended neuron (its parent's index, or -1 for a brand-new neuron), as
    :func:`minisplit.carry_state` takes them.
    """

    layer: int
    neurons: np.ndarray | None
    directions: np.ndarray | None
    apply: Callable


@dataclass(frozen=True)
class Strategy:
    """A growth strategy (one row of :data:`STRATEGIES`).

    Attributes
    ----------
    name : str
    plan : callable
        ``(round, layer, rng) -> Growth``; draws everything random from ``rng`` at
        planning time, so ``apply`` gives the same network each time it is called
        (the eps line search calls it once per eps).
    has_eps : bool
        Whether the surgery has a step size eps (a line search can tune it).
    preserves_function : bool
        Whether the grown network computes exactly the same function (splits: at eps = 0).
    surgery, signed_surgery : str
        The name a history records for a round of this strategy (with signed splits).
    predict : callable or None
        ``(round, growths, eps) -> float``: the second-order prediction of the loss
        change. None: 0 when the strategy preserves the function and has no eps,
        unknown (None) otherwise.
    requires : callable or None
        ``(net, layer) -> None``, raising ValueError with the reason when the
        strategy cannot grow that layer.
    summary : str
        One line for docs and help texts.
    """

    name: str
    plan: Callable
    has_eps: bool
    preserves_function: bool
    surgery: str
    signed_surgery: str
    predict: Callable | None = None
    requires: Callable | None = None
    summary: str = ""

    def growths(self, round_, rng) -> list:
        """This strategy's surgery of every chosen layer of ``round_``, deepest first.

        Deepest first, so the directions computed on the network before the round
        keep their dimension (a split of layer l changes the fan-in of layer l + 1's
        neurons); everything random is drawn now, from ``rng``, in this order.
        Apply them in order, each to the previous one's output.
        """
        return [self.plan(round_, layer, rng) for layer in sorted(round_.chosen, reverse=True)]

    def predicted_change(self, round_, growths, eps) -> float | None:
        """The predicted loss change of this round's surgery (see :attr:`predict`)."""
        if self.predict is not None:
            return self.predict(round_, growths, eps)
        return 0.0 if self.preserves_function and not self.has_eps else None


def _split_apply(layer, neurons, directions, alpha):
    """``apply`` of a split of ``neurons`` along ``directions`` (signed when alpha is set)."""

    def apply(net, eps):
        if alpha is None:
            return surgery.split(net, layer, neurons, directions, eps), neurons
        return surgery.signed_split(net, layer, neurons, directions, eps, alpha), neurons

    return apply


def _plan_splitting(round_, layer, rng):
    neurons = round_.chosen[layer]
    directions = round_.directions[layer][neurons]  # (m, d)
    return Growth(layer, neurons, directions, _split_apply(layer, neurons, directions,
                                                           round_.alpha))


def _random_neurons(round_, layer, rng):
    """As many distinct random neurons of ``layer`` as the selection rule chose."""
    n = round_.net.layers[layer].n_neurons
    return np.sort(rng.choice(n, size=round_.chosen[layer].size, replace=False))


def _plan_random_split(round_, layer, rng):
    neurons = _random_neurons(round_, layer, rng)
    directions = random_directions(neurons.size, round_.net.layers[layer].neuron_dim, rng)
    return Growth(layer, neurons, directions, _split_apply(layer, neurons, directions,
                                                           round_.alpha))


def _appended(layer, grow):
    """``apply`` of ``grow(net) -> new net`` appending parentless (brand-new) neurons."""

    def apply(net, eps):
        new = grow(net)
        added = new.layers[layer].n_neurons - net.layers[layer].n_neurons
        return new, np.full(added, -1, dtype=np.int64)

    return apply


def _plan_net2net(round_, layer, rng):
    neurons = _random_neurons(round_, layer, rng)
    seed, noise = int(rng.integers(2**63)), round_.config.net2net_noise

    def apply(net, eps):
        return net2net_widen(net, layer, neurons, noise, np.random.default_rng(seed)), neurons

    return Growth(layer, neurons, None, apply)


def _plan_new_neurons(round_, layer, rng):
    m, seed = round_.chosen[layer].size, int(rng.integers(2**63))
    grow = lambda net: new_neurons(net, layer, m, np.random.default_rng(seed))  # noqa: E731
    return Growth(layer, None, None, _appended(layer, grow))


def _plan_gradmax(round_, layer, rng):
    m, scale, X, y = round_.chosen[layer].size, round_.config.gradmax_scale, round_.X, round_.y
    grow = lambda net: gradmax_neurons(net, X, y, layer, m, scale)  # noqa: E731
    return Growth(layer, None, None, _appended(layer, grow))


def _plan_new_prototype(round_, layer, rng):
    samples = rng.choice(round_.X.shape[0], size=round_.chosen[layer].size, replace=False)
    X = round_.X
    grow = lambda net: new_prototypes(net, X, layer, samples)  # noqa: E731
    return Growth(layer, None, None, _appended(layer, grow))


def _plan_principal_split(round_, layer, rng):
    neurons = round_.chosen[layer]
    directions = principal_axes(round_.net, round_.X, layer, neurons)  # (m, d)
    return Growth(layer, neurons, directions, _split_apply(layer, neurons, directions,
                                                           round_.alpha))


def _signed_factor(alpha) -> float:
    """c / (v^T S v) of a split: 1 for +-eps v, -alpha/(1 + alpha) for a signed split."""
    return 1.0 if alpha is None else -alpha / (1.0 + alpha)


def _predict_splitting(round_, growths, eps) -> float:
    """(eps^2/2) sum_i c_i: each split neuron's coefficient (v is its own eigenvector)."""
    total = sum(float(np.sum(round_.values[g.layer][g.neurons])) for g in growths)
    return 0.5 * eps * eps * total


def _predict_quadratic(round_, growths, eps) -> float | None:
    """(eps^2/2) c sum_i v_i^T S_i v_i for the growths' own directions (random, principal axes),
    S on the network before the round (dense solver only)."""
    config = round_.config
    if config.solver != "dense":
        return None  # forming S is what the matrix-free solver avoids
    quad = 0.0
    for g in growths:
        S = matrices.splitting_matrices(round_.net, round_.X, round_.y, g.layer,
                                        config.relu_surrogate)[g.neurons]  # (m, d, d)
        quad += float(np.einsum("md,mde,me->", g.directions, S, g.directions))
    return 0.5 * eps * eps * _signed_factor(round_.alpha) * quad


#: Every growth strategy, by name (adding one is adding one record).
STRATEGIES = {
    s.name: s
    for s in (
        Strategy("splitting", _plan_splitting, has_eps=True, preserves_function=True,
                 surgery="split", signed_surgery="signed_split", predict=_predict_splitting,
                 summary="split the chosen neurons along their splitting eigenvectors"),
        Strategy("random_split", _plan_random_split, has_eps=True, preserves_function=True,
                 surgery="random_split", signed_surgery="random_split",
                 predict=_predict_quadratic,
                 summary="split as many random neurons along random directions"),
        Strategy("net2net", _plan_net2net, has_eps=False, preserves_function=False,
                 surgery="net2net", signed_surgery="net2net",
                 summary="copy as many random neurons, noise on the copy"),
        Strategy("new_neurons", _plan_new_neurons, has_eps=False, preserves_function=True,
                 surgery="new_neurons", signed_surgery="new_neurons",
                 summary="append freshly initialised neurons with zero outgoing weights"),
        Strategy("gradmax", _plan_gradmax, has_eps=False, preserves_function=True,
                 surgery="gradmax", signed_surgery="gradmax", requires=check_gradmax,
                 summary="append zero-input neurons whose outgoing weights maximise the "
                 "gradient"),
        Strategy("principal_split", _plan_principal_split, has_eps=True,
                 preserves_function=True, surgery="principal_split",
                 signed_surgery="principal_split", predict=_predict_quadratic,
                 requires=check_input_space,
                 summary="split the chosen prototypes along the principal axis of their "
                 "nearest inputs (LBG)"),
        Strategy("new_prototype", _plan_new_prototype, has_eps=False, preserves_function=True,
                 surgery="new_prototype", signed_surgery="new_prototype",
                 predict=lambda round_, growths, eps: None, requires=check_input_space,
                 summary="append prototypes at random inputs' encodings, read with zero "
                 "weights"),
    )
}
