"""Parametric descent: mini-batch training with an optimiser until a step budget or a plateau.

This is phase (1) of splitting steepest descent (docs/growth.md, "The loop"): train the
current architecture until the loss stops improving, then look at splitting.
Training is pure for the network (a new one comes back) and deterministic: the
same network, data, optimiser settings and seed give bit-identical results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_int, check_real, check_type, make_rng
from minisplit.network import Network, flatten, unflatten

#: A loss more than this many times (1 + the loss at the start of ``train``) is divergence.
DIVERGED = 1e10


class DivergenceError(ArithmeticError):
    """Training blew up: the loss became NaN or inf, or grew by more than :data:`DIVERGED`."""


@dataclass(frozen=True)
class Plateau:
    """The loss has stopped improving: a relative-improvement test over two windows.

    With the recorded losses l_1 .. l_T (T >= 2 window)::

        prev = mean(l_{T-2w+1} .. l_{T-w})      last = mean(l_{T-w+1} .. l_T)
        plateau  <=>  prev - last <= rel_tol * |prev|

    i.e. the mean of the last ``window`` losses improved on the mean of the
    window before it by at most a fraction ``rel_tol`` (a loss that got worse,
    or one that is exactly flat, is a plateau; ``<=`` so that a loss already
    at zero counts as flat).

    Parameters
    ----------
    window : int
        w >= 1 recorded losses per window.
    rel_tol : float
        >= 0.

    Examples
    --------
    >>> Plateau(window=2, rel_tol=0.01).reached([4.0, 4.0, 2.0, 2.0])
    False
    >>> Plateau(window=2, rel_tol=0.01).reached([2.0, 2.0, 2.0, 1.999])
    True
    """

    window: int = 50
    rel_tol: float = 1e-3

    def __post_init__(self):
        check_int(self.window, "window", low=1)
        check_real(self.rel_tol, "rel_tol", low=0)

    def reached(self, losses) -> bool:
        """Whether ``losses`` (a sequence of floats, oldest first) has plateaued."""
        w = self.window
        if len(losses) < 2 * w:
            return False
        prev = float(np.mean(losses[-2 * w : -w]))
        last = float(np.mean(losses[-w:]))
        return prev - last <= self.rel_tol * abs(prev)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``net`` the trained network (a new object); ``losses`` the recorded
    mini-batch losses, each taken before the update of its step (steps 0,
    log_every, 2 log_every, ...); ``steps_run`` the number of updates made;
    ``plateaued`` whether training stopped because the :class:`Plateau` rule fired;
    ``stationary`` whether it stopped because the full-batch gradient norm fell to the
    optimiser's ``grad_tol`` (L-BFGS); ``probe_loss`` the full-batch training loss after
    ``probe_step`` updates (None when not asked for, or not reached).
    """

    net: object
    losses: list
    steps_run: int
    plateaued: bool
    stationary: bool = False
    probe_loss: float | None = None


def minibatches(n, batch_size, rng):
    """Endless mini-batch indices: each epoch a fresh permutation of range(n), cut in order.

    Every index appears exactly once per epoch: ``ceil(n / batch_size)`` batches,
    all of size ``batch_size`` except possibly the last one (``n % batch_size``).
    A ``batch_size`` above n gives one full batch per epoch.

    Parameters
    ----------
    n : int
        Number of samples, > 0.
    batch_size : int
        > 0.
    rng : int or np.random.Generator
        Draws the permutations (a Generator is advanced in place).

    Yields
    ------
    ndarray of int (b,)

    Examples
    --------
    >>> batches = minibatches(5, 2, rng=0)
    >>> sorted(int(i) for _ in range(3) for i in next(batches))
    [0, 1, 2, 3, 4]
    """
    n = check_int(n, "n", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    return _epochs(n, batch_size, make_rng(rng, "rng"))


def _epochs(n, batch_size, rng):
    while True:
        order = rng.permutation(n)  # (n,)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def _check_data(X, y):
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"X and y must be arrays of samples, got shapes {X.shape} and {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"y must have one row per sample of X ({X.shape[0]}), got shape {y.shape}")
    return X, y


def train(
    net, X, y, optimizer, steps, batch_size=None, rng=None, plateau=None, log_every=1,
    probe_step=None,
) -> TrainResult:
    """Run up to ``steps`` optimiser updates on mini-batches of (X, y).

    Step s: take batch B_s, compute ``L_B(params), g = net.loss_and_grad(X[B_s], y[B_s])``,
    record ``L_B`` if ``s % log_every == 0``, then ``params <- optimizer.step(params, g)``.
    After each recorded loss, stop early (before that step's update) if
    ``plateau.reached(losses)``.

    Parameters
    ----------
    net : Network
        Not modified.
    X, y : arrays
        Data as for ``net.loss``; one row (sample) of y per sample of X.
    optimizer : SGD or Adam
        Its state is advanced (carried between calls, e.g. across growth rounds).
    steps : int
        Maximum number of updates, >= 0.
    batch_size : int or None
        None: full batch (no randomness). Otherwise > 0, batches from
        :func:`minibatches`.
    rng : int or np.random.Generator
        Required when ``batch_size`` is set; the batches come only from it.
    plateau : Plateau or None
        Early-stopping rule on the recorded losses; None trains all ``steps``.
    log_every : int
        Record every ``log_every``-th step's loss, > 0.
    probe_step : int or None
        Also measure the full-batch training loss after this many updates
        (``TrainResult.probe_loss``): the growth loop's "gain after a few steps".

    Notes
    -----
    A full-batch optimiser (:class:`minisplit.LBFGS`) takes the whole training set at
    every iteration: ``batch_size`` must be None, ``plateau`` is not used, each of its
    iterations counts as one step, and it stops early at a stationary point.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import minisplit as ms
    >>> X, y = ms.datasets.rbf_teacher(n=20, seed=0)
    >>> net = ms.mlp([1, 3, 1], seed=0)
    >>> result = ms.train(net, X, y, ms.SGD(lr=0.1), steps=50, batch_size=8, rng=0)
    >>> result.steps_run, result.losses[-1] < result.losses[0]
    (50, True)
    """
    check_type(net, "net", Network)
    X, y = _check_data(X, y)
    _, y, _, _ = net._check_Xy(X, y)  # once: the steps below take checked arrays
    X = np.asarray(X, dtype=np.float64)
    steps = check_int(steps, "steps", low=0)
    log_every = check_int(log_every, "log_every", low=1)
    probe_step = check_int(probe_step, "probe_step", low=0, none=True)
    if plateau is not None:
        check_type(plateau, "plateau", Plateau, "a Plateau or None")
    if optimizer.full_batch:
        if batch_size is not None:
            raise ValueError(f"batch_size must be None for the full-batch {optimizer.name}, "
                             f"got {batch_size!r}")
        return _train_full_batch(net, X, y, optimizer, steps, log_every, probe_step)
    if batch_size is None:
        batches = None
    elif rng is None:
        raise TypeError(
            "rng must be an integer >= 0 or a np.random.Generator when batch_size is set, "
            "got None"
        )
    else:
        batches = minibatches(X.shape[0], batch_size, rng)
    current, losses, start, probe = net.copy(), [], None, None
    for step in range(steps):
        if step == probe_step:
            probe = float(current.loss(X, y)) if batches is not None else None
        if batches is None:
            value, grads = current._loss_and_grad_unchecked(X, y)
        else:
            index = next(batches)
            value, grads = current._loss_and_grad_unchecked(X[index], y[index])
        start = value if start is None else start
        if not math.isfinite(value) or value > DIVERGED * (1.0 + start):
            raise DivergenceError(
                f"training diverged at step {step}: the loss went from {start:.4g} to "
                f"{value:.4g}; lower the learning rate ({optimizer!r})"
            )
        if step == probe_step and probe is None:
            probe = float(value)  # full batch: the loss of this step is the full-batch loss
        if step % log_every == 0:
            losses.append(float(value))
            if plateau is not None and plateau.reached(losses):
                return TrainResult(current, losses, step, True, probe_loss=probe)
        current = current._with_params_unchecked(optimizer._advance(current.params, grads))
    if probe_step == steps:
        probe = float(current.loss(X, y))
    return TrainResult(current, losses, steps, False, probe_loss=probe)


def _train_full_batch(net, X, y, optimizer, steps, log_every, probe_step) -> TrainResult:
    """``train`` for a full-batch optimiser: its iterations on the exact loss and gradient.

    ``losses`` holds the loss before each iteration (as for the stepped optimisers, the
    loss each update starts from), every ``log_every``-th of them.
    """
    like = net.params

    def fun_and_grad(x):
        value, grads = net._with_params_unchecked(unflatten(x, like))._loss_and_grad_unchecked(
            X, y
        )
        return value, flatten(grads)

    values = [float(fun_and_grad(flatten(like))[0])]  # the loss after 0, 1, 2, ... iterations

    def on_iteration(x, value, grad_norm):
        if not math.isfinite(value):
            raise DivergenceError(f"{optimizer.name} reached a loss of {value}")
        values.append(value)

    x, iterations, stationary = optimizer.minimize(fun_and_grad, flatten(like), steps,
                                                   on_iteration)
    losses = values[:iterations][::log_every]
    at = values[probe_step] if probe_step is not None and probe_step < len(values) else None
    trained = net._with_params_unchecked(unflatten(x, like))
    return TrainResult(trained, losses, iterations, False, stationary, at)
