"""Split surgery: new networks whose layers have more (or moved) neurons.

The layers know their own surgery (``NeuronLayer.with_neuron_params``,
``ReadingLayer.out_weights`` and ``with_out_weights``; :mod:`minisplit.layers.base`);
this module finds a neuron layer's reader and rewrites both through one primitive,
:func:`regrow`. Every function returns a new network; the input is untouched.

Neuron i is replaced by offspring theta_i + eps s_j v with output weights w_j
(sum_j w_j = 1, sum_j w_j s_j = 0): every weight of the reader that multiplies unit i
is multiplied by w_j for offspring j (docs/surgery.md). Appended neurons go at the end.
:func:`remove_units` is the inverse: it drops units and the reader's weights on them,
optionally folding a constant unit into the reader's bias (docs/pruning.md).
"""

from __future__ import annotations

import numpy as np

from minisplit._checks import check_array, check_bool, check_real
from minisplit.layers.base import ReadingLayer, UnitCarryingLayer
from minisplit.layers.conv import Conv2d
from minisplit.layers.dense import Dense
from minisplit.splitting.matrices import neuron_layer

#: The largest negative weight of a signed split (see :func:`signed_split`).
MAX_ALPHA = 1000.0


def reader_index(net, layer) -> int:
    """Index of the layer that reads layer ``layer``'s units linearly.

    Only unit-passing layers (pooling, flatten) and unit-carrying layers (a depthwise
    convolution, whose per-unit rows a surgery copies: :func:`carriers`) may stand in
    between. Raises ValueError for the output layer (nothing reads it: splitting it would
    change the number of outputs), for a non-linear reader (RBF), and for a unit-carrying
    layer itself (its units are its input's: it grows only with the layer before it).
    """
    obj = neuron_layer(net, layer)
    if isinstance(obj, UnitCarryingLayer):
        raise ValueError(
            f"layer {layer} ({type(obj).__name__}) carries the units of the layer before it "
            "one to one: a second copy of a channel would need a second input channel, so it "
            "grows only when the neuron layer before it splits (docs/surgery.md)"
        )
    for index in range(layer, len(net.layers)):
        if any(head.at == index for head in net.heads):
            raise ValueError(
                f"a head reads the output of layer {index}, so it reads layer {layer}'s units: "
                "growing a layer a head reads is not supported"
            )
        obj = net.layers[index]
        if index == layer or obj.passes_units or isinstance(obj, UnitCarryingLayer):
            continue
        if not isinstance(obj, ReadingLayer):
            raise ValueError(
                f"layer {layer} feeds layer {index} ({type(obj).__name__}), which reads its "
                "input non-linearly: a split unit cannot be halved into it"
            )
        return index
    raise ValueError(
        f"layer {layer} is the output layer: its neurons are the network's outputs and "
        "cannot be split"
    )


def carriers(net, layer) -> list[int]:
    """Indices of the unit-carrying layers between ``layer`` and its reader (in order).

    A surgery of ``layer`` rewrites each of them with ``with_units(parents)``; empty for a
    layer read directly or through pooling and flatten only."""
    r = reader_index(net, layer)
    return [i for i in range(layer + 1, r) if isinstance(net.layers[i], UnitCarryingLayer)]


def is_growable(net, layer) -> bool:
    """Whether ``layer`` is a neuron layer with a linear reader (one that surgery can grow)."""
    try:
        reader_index(net, layer)
    except ValueError:
        return False
    return True

def _check_neurons(obj, neurons, name="neurons") -> np.ndarray:
    """Distinct neuron indices of ``obj`` as an int64 vector (empty allowed: a no-op)."""
    neurons = np.asarray(neurons)
    if neurons.size == 0:
        neurons = neurons.astype(np.int64)  # np.asarray([]) is float; empty is a valid no-op plan
    if not np.issubdtype(neurons.dtype, np.integer):
        raise TypeError(f"{name} must be integer indices, got dtype {neurons.dtype}")
    if neurons.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {neurons.shape}")
    if neurons.size and (neurons.min() < 0 or neurons.max() >= obj.n_neurons):
        raise ValueError(f"{name} must be indices in [0, {obj.n_neurons}), got {neurons}")
    if np.unique(neurons).size != neurons.size:
        raise ValueError(f"{name} must be distinct indices, got {neurons}")
    return neurons.astype(np.int64)


def _check_plan(obj, neurons, directions, eps):
    neurons = _check_neurons(obj, neurons)
    directions = check_array(directions, "directions")
    if directions.shape != (neurons.size, obj.neuron_dim):
        raise ValueError(
            f"directions must have shape ({neurons.size}, {obj.neuron_dim}), "
            f"got {directions.shape}"
        )
    return neurons, directions, check_real(eps, "eps", low=0)


def regrow(net, layer, theta, out_weights, weights=None, parents=None):
    """A new network whose layer ``layer`` has neurons ``theta`` read with ``out_weights``.

    The single surgery primitive behind :func:`split`, :func:`signed_split`,
    :func:`add_neurons` and every growth strategy: rows of ``theta`` (n', d) are the
    neurons, ``out_weights`` (n', ...) the reader's weights on each of them (rows
    like ``reader.out_weights(n)``), ``weights`` (n',) the layer's own weights on them
    (``NeuronLayer.neuron_weights``; None for a layer without), ``parents`` (n',) the old
    neuron each row came from (-1: a brand-new neuron; None: row i is old neuron i, rows
    past n are brand-new), whose state outside theta it takes: a batch-normalised layer's
    gamma, beta and running statistics (``NeuronLayer.with_neuron_params``). Every
    unit-carrying layer in between (:func:`carriers`: a depthwise convolution of a
    separable block) takes the same ``parents``: a split unit's filter is copied unchanged,
    a brand-new unit gets the layer's defaults (``UnitCarryingLayer.with_units``). The input
    network is untouched.
    """
    obj = neuron_layer(net, layer)
    r = reader_index(net, layer)
    theta = np.asarray(theta, dtype=np.float64)
    out_weights = np.asarray(out_weights, dtype=np.float64)
    if out_weights.shape[0] != theta.shape[0]:
        raise ValueError(
            f"out_weights must have {theta.shape[0]} unit rows, got {out_weights.shape[0]}"
        )
    if weights is not None and np.shape(weights) != (theta.shape[0],):
        raise ValueError(f"weights must have shape ({theta.shape[0]},), got {np.shape(weights)}")
    parents = obj._check_parents(parents, theta.shape[0])
    new = net.copy()
    new.layers[layer] = obj.with_neuron_params(theta, weights, parents)
    for index in carriers(net, layer):
        new.layers[index] = net.layers[index].with_units(parents)
    new.layers[r] = net.layers[r].with_out_weights(out_weights)
    return new


def grown_parts(net, layer):
    """``(theta, out_weights)``: copies of a growable layer's neuron rows and its reader's
    weights on them, the two arrays every surgery edits before :func:`regrow`."""
    obj = neuron_layer(net, layer)
    return obj.neuron_params(), net.layers[reader_index(net, layer)].out_weights(obj.n_neurons)


def split(net, layer, neurons, directions, eps) -> object:
    """Split neurons along given directions: theta_i +- eps v_i, outputs weighted 1/2, 1/2.

    Neuron ``neurons[j]`` becomes ``theta + eps * directions[j]`` in place and a
    new neuron ``theta - eps * directions[j]`` is appended at the end of the
    layer (in the order of ``neurons``). Every weight of the next reading layer
    that reads the neuron is copied to the new unit and both copies are
    multiplied by 1/2. At eps = 0 the network computes the same function.

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer that is not the output layer.
    neurons : array of int (m,)
        Distinct neuron indices.
    directions : ndarray (m, d)
        One direction per neuron (e.g. v_min from :func:`splitting_indices`).
    eps : float
        Step size, >= 0.

    Returns
    -------
    Network
        A new network with m more neurons in ``layer``; ``net`` is untouched.
    """
    return _two_offspring(net, layer, neurons, directions, eps, weight=0.5, sign=-1.0)


def signed_split(net, layer, neurons, directions, eps, alpha=1.0) -> object:
    """Split with one negative output weight (docs/splitting.md, section 9).

    Neuron theta becomes two offspring::

        theta_1 = theta + eps v,                  output weight -alpha  (appended)
        theta_2 = theta + eps alpha/(1+alpha) v,  output weight 1+alpha (in place)

    With v = v_max the loss changes by -(eps^2/2) alpha/(1+alpha) lambda_max +
    O(eps^3), so a splitting-stable neuron (lambda_min >= 0) can still be
    escaped when lambda_max > 0. Weights sum to 1 and the weighted mean offset
    is zero, so at eps = 0 the function is unchanged.

    Parameters
    ----------
    net, layer, neurons, directions, eps
        As in :func:`split` (use v_max, ``which="max"``).
    alpha : float
        In (0, 1000], the magnitude of the negative weight. The reader's weights on the two
        offspring are -alpha w and (1 + alpha) w, so at eps = 0 the function is kept up to
        a rounding error of about (1 + 2 alpha) times the machine epsilon (relative): the
        bound keeps that below 3e-13.

    Returns
    -------
    Network
    """
    alpha = check_real(alpha, "alpha", low=0, high=MAX_ALPHA, low_open=True)
    return _two_offspring(net, layer, neurons, directions, eps, weight=-alpha, sign=1.0)


def _two_offspring(net, layer, neurons, directions, eps, weight, sign):
    """Offspring theta + eps s v (appended, output weight w) and theta + eps t v (in place,
    output weight 1 - w), with t = -w s / (1 - w) so the weighted mean offset is zero."""
    neurons, directions, eps = _check_plan(neuron_layer(net, layer), neurons, directions, eps)
    theta, out_weights = grown_parts(net, layer)  # (n, d), (n, ...)
    keep = 1.0 - weight
    with np.errstate(over="ignore"):  # an overflow is reported below, by name
        appended = theta[neurons] + eps * sign * directions  # (m, d)
        theta[neurons] += eps * (-weight * sign / keep) * directions
    if not (np.all(np.isfinite(appended)) and np.all(np.isfinite(theta))):
        raise ValueError(
            f"eps={eps:g} times the directions leaves the floating-point range: the split "
            "neurons' parameters would be inf; use a smaller eps"
        )
    new_weights = out_weights[neurons] * weight  # (m, ...)
    out_weights[neurons] *= keep
    own = net.layers[layer].neuron_weights()  # the layer's own reading weights, split alike
    if own is not None and weight < 0:
        raise ValueError(
            f"layer {layer} ({type(net.layers[layer]).__name__}) weights its own neurons (a "
            "penalty on them), and a signed split needs positive weights: use split"
        )
    if own is not None:
        own = np.concatenate([own * np.where(np.isin(np.arange(own.size), neurons), keep, 1.0),
                              own[neurons] * weight])
    parents = np.concatenate([np.arange(theta.shape[0]), neurons])  # offspring copy the parent
    return regrow(
        net, layer, np.vstack([theta, appended]), np.concatenate([out_weights, new_weights]),
        own, parents,
    )


def split_many(net, plan, eps) -> object:
    """Split neurons of several layers at once.

    Parameters
    ----------
    plan : dict {layer: (neurons, directions)}
        Directions computed on ``net`` (before any split).
    eps : float

    Notes
    -----
    Layers are split from the deepest to the shallowest, so a layer's split
    never changes the dimension of a deeper neuron's direction; the second-order
    effects of the splits add (docs/splitting.md, section 6).
    """
    if not isinstance(plan, dict):
        raise TypeError(f"plan must be a dict {{layer: (neurons, directions)}}, got {plan!r}")
    for layer in sorted(plan, reverse=True):
        neurons, directions = plan[layer]
        net = split(net, layer, neurons, directions, eps)
    return net


def add_neurons(net, layer, theta, out_weights, weights=None) -> object:
    """Append brand-new neurons with given incoming and outgoing weights.

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer that is not the output layer.
    theta : ndarray (m, d)
        The new neurons' parameters (rows like ``neuron_params``).
    out_weights : ndarray (m, ...)
        The reader's weights on each new unit, shaped like rows of
        ``reader.out_weights(n)`` (Dense reader: (m, n_out, block)).
    weights : ndarray (m,) or None
        For a layer with neuron weights (the prototype layer's masses): the new neurons'
        (None: the mean of the existing ones). Ignored for other layers.

    Returns
    -------
    Network
        With zero ``out_weights`` the function is unchanged (a penalty the layer puts on
        its own outputs, such as R1 and R2, does change with the new neurons).
    """
    old_theta, old_weights = grown_parts(net, layer)
    theta = check_array(theta, "theta")
    out_weights = check_array(out_weights, "out_weights")
    if theta.ndim != 2 or theta.shape[1] != old_theta.shape[1]:
        raise ValueError(f"theta must have shape (m, {old_theta.shape[1]}), got {theta.shape}")
    if out_weights.shape != (theta.shape[0],) + old_weights.shape[1:]:
        raise ValueError(
            f"out_weights must have shape {(theta.shape[0],) + old_weights.shape[1:]}, "
            f"got {out_weights.shape}"
        )
    own = net.layers[layer].neuron_weights()
    if own is not None:
        extra = np.full(theta.shape[0], own.mean()) if weights is None else check_array(
            weights, "weights")
        own = np.concatenate([own, extra])
    parents = np.concatenate([np.arange(old_theta.shape[0]), np.full(theta.shape[0], -1)])
    return regrow(
        net, layer, np.vstack([old_theta, theta]), np.concatenate([old_weights, out_weights]),
        own, parents,
    )


def remove_units(net, layer, units, fold_constant=False) -> object:
    """Remove units of a neuron layer and the reader's weights on them: the inverse of a split.

    Unit u of ``layer`` (neuron row u, and the reader's weights on u, row u of
    ``reader.out_weights(n)``) is dropped for every u in ``units``; the units that stay
    keep their order, so old unit ``keep[j]`` becomes unit j with
    ``keep = np.setdiff1d(np.arange(n), units)``. The reader's input before and after::

        z_o = b_o + sum_u sum_t W[o, u, t] a_u(t)           t: the taps or columns of u
        z_o' = b_o + sum_{u kept} sum_t W[o, u, t] a_u(t)   (+ the folded constants, below)

    Parameters
    ----------
    net : Network
    layer : int
        A neuron layer with a linear reader (as for :func:`split`): Dense, Conv2d or RBF
        read by a Dense or a Conv2d, through AvgPool2d, GlobalAvgPool2d or Flatten.
    units : array of int (m,)
        Distinct unit indices in [0, n) with m < n: a layer keeps at least one unit.
        Empty: a copy of ``net``.
    fold_constant : bool
        False: drop the units; the function is unchanged exactly when the reader's weights
        on them are zero. True: every removed unit must output a constant c_u at every
        sample and position (a Dense or Conv2d neuron whose incoming weights are all zero
        outputs c_u = f(b_u); with batch norm see ``_constant_outputs``: zero weights or
        gamma_u = 0), and ``c_u * sum_t W[o, u, t]`` is added to the reader's bias b_o
        (a batch-normalised reader has none: it is subtracted from its running mean, which
        its batch mean follows by itself in train mode), which keeps the function exactly
        (up to rounding) for a Dense reader and for a Conv2d reader without padding; a
        Conv2d reader with padding is refused.

    Returns
    -------
    Network
        With n - m units in ``layer`` and a reader reading them; ``net`` is untouched.

    Raises
    ------
    TypeError
        Indices that are not integers; ``fold_constant`` not a bool.
    ValueError
        Indices out of range or repeated; removing every unit; a layer without a linear
        reader (as :func:`reader_index`); with ``fold_constant``: a removed unit that is
        not constant, or a Conv2d reader with padding.

    Notes
    -----
    Folding. If a_u(t) = c_u for every input and every t, the removed term is
    ``c_u sum_t W[o, u, t]``, the same for every input: a bias. A pooling layer or a
    flatten in between keeps a constant map constant. A Conv2d reader with padding p > 0
    sees zeros, not c_u, at the taps that fall on its padded border, so there the term is
    ``c_u`` times the sum of the in-image taps only: a position-dependent offset that no
    bias reproduces. Folding into the bias would be exact in the interior and wrong on the
    border, so it is refused rather than silently approximate (docs/pruning.md).

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit import mlp
    >>> net = mlp([2, 3, 1], seed=0)
    >>> small = remove_units(net, 0, [1])
    >>> small.layers[0].W.shape, small.layers[1].W.shape
    ((2, 2), (1, 2))
    """
    obj = neuron_layer(net, layer)
    r = reader_index(net, layer)
    units = _check_neurons(obj, units, "units")
    fold_constant = check_bool(fold_constant, "fold_constant")
    n = obj.n_neurons
    if units.size >= n:
        raise ValueError(
            f"units must leave at least one of the {n} units of layer {layer} "
            f"({type(obj).__name__}), got all of them"
        )
    theta, out_weights = grown_parts(net, layer)  # (n, d), (n, ...)
    keep = np.setdiff1d(np.arange(n), units)  # (n - m,), in order
    own = obj.neuron_weights()
    new = regrow(net, layer, theta[keep], out_weights[keep], None if own is None else own[keep],
                 keep)
    if fold_constant and units.size:
        between = carriers(net, layer)
        if between:
            raise ValueError(
                "fold_constant needs the reader to see the removed units' constants, got "
                f"layer {between[0]} ({type(net.layers[between[0]]).__name__}) in between, "
                "whose filters change them; remove them without folding"
            )
        shift = _folded_bias(net, layer, r, units, out_weights)  # (reader outputs,)
        new.layers[r] = _with_bias_shift(new.layers[r], shift, r)
    return new


def _constant_outputs(obj, units, mode) -> np.ndarray:
    """The constant output c_u of each unit (n,) or NaN where the unit is not constant.

    A Dense or Conv2d neuron whose incoming weights are all exactly zero outputs
    c_u = f(b_u) for every input (at every position: its padding reads zeros it multiplies
    by zero weights). With batch norm (no b), such a neuron normalises the constant 0:
    c_u = f(beta_u - gamma_u mu_u / sqrt(var_u + eps)) in eval mode (running statistics),
    f(beta_u) in train mode (the batch mean of a constant is itself); and a neuron with
    gamma_u = 0 outputs c_u = f(beta_u) in both modes. Any other unit, or a layer of another
    kind, gives NaN.
    """
    constants = np.full(len(units), np.nan)  # (m,)
    if not isinstance(obj, (Dense, Conv2d)):
        return constants
    W = obj.W.reshape(obj.n_neurons, -1)[units]  # (m, fan-in)
    flat = ~np.any(W != 0.0, axis=1)  # (m,)
    if not obj.batch_norm:
        constants[flat] = obj.act.f(obj.b[units][flat])
        return constants
    gamma, beta = obj.gamma[units], obj.beta[units]
    shift = 0.0 if mode == "train" else gamma * obj.running_mean[units] / np.sqrt(
        obj.running_var[units] + obj.bn_eps)
    constants[flat] = obj.act.f(beta - shift)[flat]
    silent = gamma == 0.0
    constants[silent] = obj.act.f(beta[silent])
    return constants


def _folded_bias(net, layer, r, units, out_weights) -> np.ndarray:
    """sum_u c_u sum_t W[o, u, t] over the removed units (reader outputs,), or ValueError."""
    obj, reader = net.layers[layer], net.layers[r]
    constants = _constant_outputs(obj, units, net.mode)  # (m,)
    if np.isnan(constants).any():
        raise ValueError(
            f"fold_constant needs every removed unit of layer {layer} to output a constant "
            "(a Dense or Conv2d neuron whose incoming weights are all zero, or a batch-normalised "
            f"one with gamma = 0), got units {units[np.isnan(constants)]} that are not"
        )
    if isinstance(reader, Conv2d) and any(reader.padding):
        raise ValueError(
            f"fold_constant needs a reader that sees the constant at every tap, got layer {r} "
            f"(Conv2d) with padding {reader.padding}: its padded border reads zeros, so no "
            "bias reproduces the removed units there; remove them without folding"
        )
    read = out_weights[units].reshape(units.size, out_weights.shape[1], -1).sum(axis=2)
    return constants @ read  # (reader outputs,)


def _with_bias_shift(reader, shift, r):
    """The reader with ``shift`` added to its bias b (a copy); a batch-normalised reader
    (no bias) takes it as ``running_mean - shift``: gamma (z' + shift - mu) s + beta is
    gamma (z' - mu') s + beta with mu' = mu - shift, and a batch mean shifts by itself."""
    if isinstance(reader, (Dense, Conv2d)) and reader.batch_norm:
        new = reader.copy()
        new.set_buffers([reader.running_mean - shift, reader.running_var])
        return new
    if "b" not in reader.param_names:
        raise ValueError(
            f"fold_constant needs a reader with a bias b, got layer {r} "
            f"({type(reader).__name__}) with parameters {reader.param_names}"
        )
    params = [p + shift if name == "b" else p
              for name, p in zip(reader.param_names, reader.params)]
    return type(reader).from_config(reader.config(), params, reader.buffers)


def carry_state(net, layer, arrays, parents) -> list:
    """Carry arrays shaped like ``net.params`` (e.g. optimiser state) through a surgery.

    After a surgery that appended neurons to ``layer`` (all of :func:`split`,
    :func:`signed_split`, :func:`add_neurons` keep old neurons at their
    indices), new neuron i takes the rows of its parent ``parents[i]`` in the
    layer's parameters and in its reader's input weights, or zeros when
    ``parents[i] == -1`` (a brand-new neuron). Old rows are unchanged.

    Parameters
    ----------
    net : Network
        The network *before* the surgery.
    layer : int
    arrays : list of arrays shaped like ``net.params``
    parents : array of int (m,)
        Parent index in [0, n) or -1, one per appended neuron.

    Returns
    -------
    list of arrays shaped like the new network's ``params``.
    """
    n = neuron_layer(net, layer).n_neurons
    parents = np.asarray(parents)
    if parents.size == 0:
        parents = parents.astype(np.int64)
    if not np.issubdtype(parents.dtype, np.integer):
        raise TypeError(f"parents must be integer indices, got dtype {parents.dtype}")
    if parents.ndim != 1 or (parents.size and (parents.min() < -1 or parents.max() >= n)):
        raise ValueError(f"parents must be indices in [-1, {n}), got {parents}")
    def grown(state):
        theta, out_weights = grown_parts(state, layer)
        known = parents >= 0
        source = np.maximum(parents, 0)
        new_theta = np.where(known[:, None], theta[source], 0.0)  # (m, d): 0 for a new neuron
        mask = known.reshape((-1,) + (1,) * (out_weights.ndim - 1))
        new_weights = np.where(mask, out_weights[source], 0.0)  # (m, ...)
        rows = np.concatenate([np.arange(n), parents])
        return regrow(state, layer, np.vstack([theta, new_theta]),
                      np.concatenate([out_weights, new_weights]), parents=rows).params

    # per-neuron parameters outside theta (BN's gamma, beta) are copied from the parent,
    # or set to their defaults (gamma = 1) for a brand-new neuron: subtracting the surgery
    # of an all-zero state removes the defaults, and leaves zeros there, as for theta
    state = grown(net.with_params(arrays))
    defaults = grown(net.with_params([np.zeros_like(p) for p in net.params]))
    return [p - q for p, q in zip(state, defaults)]
