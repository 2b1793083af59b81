"""The growth loop of splitting steepest descent and its baselines (docs/growth.md, "The loop").

Round 0 trains the starting network until its loss plateaus. Every later round:

1. compute the splitting indices lambda_min of every grown layer (the neuron
   layers with a linear reader: :func:`growable_layers`);
2. choose neurons with the selection rule (:mod:`minisplit.growth.selection`,
   pooled over layers), keeping within the size budget; when no index is negative,
   stop ("stable") -- or, with ``signed=True``, choose by lambda_max instead;
3. grow with the strategy's record (:mod:`minisplit.growth.strategies`): split the
   chosen neurons, or grow the same number per layer a baseline's way; deepest
   layer first, the optimiser told how its state maps through each layer's surgery;
4. train until the loss plateaus again.

A network with batch-normalised layers trains in its own mode (train: batch statistics);
the running statistics are set to the exact statistics of the whole training set after
every round's training (:func:`~minisplit.network.set_running_statistics`), so every
round's network, checkpoint and the result carry them, and the splitting indices, the
surgery and its line search of the next round run in eval mode (the splitting matrices
fold eval-mode BN; with these statistics both modes give the same loss on the training
set). The round's metrics are computed in eval mode (test data with the training set's
statistics).

It stops when the budget (neurons, parameters or FLOPs) is spent, after
``max_rounds`` surgeries, or when nothing can be chosen. Every round is recorded
in a :class:`~minisplit.history.History` (fields in docs/growth.md). All
randomness comes from one Generator seeded by ``config.seed``: a run is
reproducible bit for bit, and resumable from a checkpoint
(:mod:`minisplit.growth.checkpoint`).
"""

from __future__ import annotations

import time

import numpy as np

from minisplit._checks import check_bool, check_callable, check_int, check_type
from minisplit.growth.checkpoint import Checkpoint, CheckpointFolder, fingerprint
from minisplit.growth.config import GrowthConfig, GrowthResult
from minisplit.growth.history import History, Round
from minisplit.growth.selection import SELECTIONS
from minisplit.growth.sizes import growable_layers, measure, network_size, unit_costs
from minisplit.growth.strategies import STRATEGIES, reinitialized
from minisplit.growth.strategies import Round as RoundInput
from minisplit.network import Network, flatten, set_running_statistics
from minisplit.splitting.matrices import splitting_indices_of_layers
from minisplit.splitting.surgery import carry_state
from minisplit.training import train

# ---- one round's plan ----------------------------------------------------------------------


def _fit_budget(chosen, values, costs, left) -> dict:
    """The chosen neurons, most negative first, as long as their total cost fits ``left``."""
    ranked = sorted((values[i][j], i, j) for i, idx in chosen.items() for j in idx)
    kept, spent = {}, 0
    for _, i, j in ranked:
        if spent + costs[i] <= left:
            spent += costs[i]
            kept.setdefault(i, []).append(int(j))
    return {i: np.array(kept[i], dtype=np.int64) for i in sorted(kept)}


def _indices(net, X, y, layers, which, config):
    """{layer: values (n,)}, {layer: unit vectors (n, d)} of the extreme eigenpairs of S_i."""
    pairs = splitting_indices_of_layers(  # one forward and backward pass for every layer
        net, X, y, layers, which=which, solver=config.solver,
        relu_surrogate=config.relu_surrogate, seed=config.seed,
    )
    return {i: p[0] for i, p in pairs.items()}, {i: p[1] for i, p in pairs.items()}


def _plan(net, X, y, layers, config, size):
    """``(plan, values, vectors, spectrum)`` for this round, or ``(reason, spectrum)`` to stop.

    ``values`` are the second-order coefficients c_i with dL = (eps^2/2) c_i:
    lambda_min, or -alpha/(1 + alpha) lambda_max for a signed split.
    """
    kind = config.budget_kind
    left = np.inf if config.budget is None else config.budget - measure(size, kind)
    costs = unit_costs(net, X, layers, kind)
    if min(costs.values()) > left:
        return "budget", None  # not even one neuron fits
    flops_costs = costs if kind == "flops" else unit_costs(net, X, layers, "flops")
    flops_left = left if kind == "flops" else np.inf
    values, vectors = _indices(net, X, y, layers, "min", config)
    spectrum = {"kind": "min", "values": [values[i].tolist() for i in layers]}
    stable = all(np.all(values[i] >= 0) for i in layers)
    if stable and config.signed:
        lam_max, vectors = _indices(net, X, y, layers, "max", config)
        values = {i: -config.alpha / (1 + config.alpha) * lam_max[i] for i in layers}
        spectrum = {"kind": "max", "values": [lam_max[i].tolist() for i in layers]}
        stable = all(np.all(values[i] >= 0) for i in layers)
    chosen = SELECTIONS[config.selection].choose(values, config, flops_costs, flops_left)
    if not any(idx.size for idx in chosen.values()):
        return ("stable" if stable else "none_selected"), spectrum
    plan = _fit_budget(chosen, values, costs, left)
    if not plan:
        return "budget", spectrum
    return plan, values, vectors, spectrum


def _apply(net, growths, eps):
    """Apply the growths in order: the new network and [(net_before, layer, parents)]."""
    trail = []
    for growth in growths:
        new, parents = growth.apply(net, eps)
        trail.append((net, growth.layer, parents))
        net = new
    return net, trail


def _surgery(strategy, net, X, y, growths, config):
    """``(eps, grown, trail)``: eps fixed, or the grid value with the lowest loss right after."""
    if not strategy.has_eps:
        return (None, *_apply(net, growths, None))
    grid = config.eps_grid if config.eps == "line_search" else (config.eps,)
    best = None
    for eps in grid:
        grown, trail = _apply(net, growths, float(eps))
        loss = grown.loss(X, y) if len(grid) > 1 else 0.0
        if best is None or loss < best[0]:
            best = (loss, float(eps), grown, trail)
    return best[1:]


# ---- the loop ------------------------------------------------------------------------------


def _metrics(net, data) -> dict:
    """Full-batch loss (and its gradient's norm on the training data), and accuracy for
    cross-entropy, on the training and test data."""
    X, y, X_test, y_test = data
    value, grads = net.loss_and_grad(X, y)
    out = {"grad_norm": float(np.linalg.norm(flatten(grads)))}
    for part, A, b in (("train", X, y), ("test", X_test, y_test)):
        loss = accuracy = None
        if A is not None:
            loss = float(value) if part == "train" else float(net.loss(A, b))
            if net.loss_fn.name == "cross_entropy":
                accuracy = float(np.mean(np.argmax(net.forward(A), axis=1) == np.asarray(b)))
        out[f"{part}_loss"], out[f"{part}_accuracy"] = loss, accuracy
    return out


def _train(net, data, optimizer, rng, config, steps, plateau, layers, steps_before, probe):
    """Train one round: the trained network and the round's training fields.

    ``probe``: also record the full-batch loss after ``config.early_steps`` updates (the
    surgery's gain after a few steps; round 0 has no surgery and does not ask).
    """
    start = time.perf_counter()
    result = train(net, data[0], data[1], optimizer, steps, config.batch_size, rng, plateau,
                   probe_step=config.early_steps if probe else None)
    trained, evaluated = result.net, result.net
    if trained.has_batch_norm:  # running statistics of the training set (module docstring)
        trained = set_running_statistics(trained, data[0])
        evaluated = trained.copy().set_mode("eval")
    fields = {
        "time_train": time.perf_counter() - start,
        **network_size(trained, data[0], layers),
        "steps": int(result.steps_run),
        "total_steps": steps_before + int(result.steps_run),
        "plateaued": bool(result.plateaued),
        "stationary": bool(result.stationary),
        "losses": [float(v) for v in result.losses],
        "early_loss": result.probe_loss,
        **_metrics(evaluated, data),
    }
    return trained, fields


#: The surgery fields of round 0 (and of the fixed baseline's only round).
_NO_SURGERY = {
    "round": 0, "surgery": None, "chosen": None, "n_added": 0, "eps": None,
    "loss_before": None, "loss_after_split": None, "predicted_change": None,
    "actual_change": None, "spectrum": None, "time_split": 0.0,
}


def _carry(net_before, layer, parents):
    """How arrays shaped like ``net_before``'s parameters follow a surgery of ``layer``."""
    return lambda arrays: carry_state(net_before, layer, arrays, parents)


def _new_history(strategy, config, layers, net) -> History:
    task = "classification" if net.loss_fn.name == "cross_entropy" else "regression"
    meta = {"strategy": strategy, "config": config.to_dict(), "layers": layers, "task": task}
    return History({**meta, "stop_reason": None, "stop_spectrum": None})


def _check_inputs(net, data, config, progress) -> list:
    X, y, X_test, y_test = data
    check_type(net, "net", Network)
    check_type(config, "config", GrowthConfig)
    check_callable(progress, "progress", none=True)
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test and y_test must be given together")
    net.loss(X, y)  # validates shapes and targets
    if X_test is not None:
        net.loss(X_test, y_test)
    layers = growable_layers(net)
    if not layers:
        raise ValueError("net has no layer to grow: no neuron layer is read linearly by another")
    requires = STRATEGIES[config.strategy].requires
    if requires is not None:
        for index in layers:
            requires(net, index)
    return layers


class _Run:
    """The mutable state of one growth run: network, optimiser, Generator, history."""

    def __init__(self, net, data, config, layers, progress):
        self.net, self.data, self.config, self.layers = net, data, config, layers
        self.folder, self.progress, self.networks = None, progress, None
        self.stamp = fingerprint(config.to_dict(), data[0], data[1], net)
        self.optimizer = config.make_optimizer()
        self.rng = np.random.default_rng(config.seed)
        self.history = _new_history(config.strategy, config, layers, net)

    def restore(self, saved) -> None:
        """Continue from a checkpoint of this very run."""
        if saved.fingerprint != self.stamp:
            raise ValueError(
                f"checkpoint {self.folder.path!r} belongs to another run (its config, data or "
                "starting network differ from these); use another directory, or "
                "overwrite=True to replace it"
            )
        self.net, self.history = saved.net, saved.history
        self.optimizer.load_state_dict(saved.optimizer)
        self.rng.bit_generator.state = saved.rng_state

    def train(self, net, surgery) -> None:
        """Train ``net`` one round; record it (after the ``surgery`` fields), checkpoint, report."""
        config, steps_before = self.config, self.history.total_steps
        self.net, fields = _train(
            net, self.data, self.optimizer, self.rng, config, config.steps_per_round,
            config.plateau(), self.layers, steps_before, probe=surgery["surgery"] is not None,
        )
        record = Round(**surgery, **fields)
        self.history.rounds.append(record)
        if self.networks is not None:
            self.networks.append(self.net)
        if self.folder is not None:
            state = (self.optimizer.state_dict(), self.rng.bit_generator.state, self.history)
            self.folder.save(Checkpoint(self.net, *state, config.to_dict(), self.stamp))
        if self.progress is not None:
            keys = ("round", "n_neurons", "params", "flops", "total_steps")
            event = {k: getattr(record, k) for k in keys}
            self.progress({"event": "round", **event, "loss": record.train_loss})

    def grow_round(self):
        """Plan, grow and train one round; return ``(reason, spectrum)`` to stop, else None."""
        X, y = self.data[:2]
        net, config, layers = self.net, self.config, self.layers
        mode = net.mode
        if net.has_batch_norm:  # split in eval mode, with the statistics _train set
            net = net.copy().set_mode("eval")
        size, round_index = network_size(net, X, layers), len(self.history.rounds)
        if config.budget is not None and measure(size, config.budget_kind) >= config.budget:
            return "budget", None
        if round_index > config.max_rounds:
            return "max_rounds", None
        start = time.perf_counter()
        planned = _plan(net, X, y, layers, config, size)
        if isinstance(planned[0], str):
            return planned
        plan, values, vectors, spectrum = planned
        alpha = config.alpha if spectrum["kind"] == "max" else None
        strategy = STRATEGIES[config.strategy]
        round_input = RoundInput(net, X, y, plan, values, vectors, alpha, config)
        growths = strategy.growths(round_input, self.rng)
        eps, grown, trail = _surgery(strategy, net, X, y, growths, config)
        for net_before, index, parents in trail:
            self.optimizer.after_surgery(_carry(net_before, index, parents), config.surgery_state)
        loss_before, loss_after = self.history.rounds[-1].train_loss, float(grown.loss(X, y))
        record = {
            "round": round_index,
            "surgery": strategy.surgery if alpha is None else strategy.signed_surgery,
            "chosen": {i: idx.tolist() for i, idx in plan.items()},
            "n_added": sum(grown.layers[i].n_neurons - net.layers[i].n_neurons for i in layers),
            "eps": eps,
            "loss_before": loss_before,
            "loss_after_split": loss_after,
            "predicted_change": strategy.predicted_change(round_input, growths, eps),
            "actual_change": loss_after - loss_before,
            "spectrum": spectrum,
            "time_split": time.perf_counter() - start,
        }
        self.train(grown.set_mode(mode), record)
        return None


def grow(
    net, X, y, config=None, X_test=None, y_test=None, checkpoint=None, resume=False,
    progress=None, overwrite=False, keep_networks=False,
) -> GrowthResult:
    """Grow a network: train to a plateau, grow, repeat (module docstring; docs/growth.md).

    Parameters
    ----------
    net : Network
        The starting network (not modified).
    X, y : arrays
        Training data: losses, splitting indices and line searches use all of it.
    config : GrowthConfig or None
        None: ``GrowthConfig()``.
    X_test, y_test : arrays or None
        Evaluated at the end of every round.
    checkpoint : str or os.PathLike or None
        A directory the run owns; a snapshot is written after every round
        (:mod:`minisplit.growth.checkpoint`). It is opened (created, locked, checked)
        before any training, so an unusable destination fails at once.
    resume : bool
        Continue from the checkpoint if it holds one of this run (start afresh when
        it holds none); the result is bit-identical to an uninterrupted run. A
        checkpoint of another config, data or starting network raises ValueError.
    progress : callable or None
        Called with ``{"event": "round", "round", "n_neurons", "params", "flops",
        "loss", "total_steps"}`` after every round and ``{"event": "stop",
        "round", "reason"}`` at the end.
    overwrite : bool
        Replace a checkpoint of another run (or of this one, when not resuming) that
        the folder holds; without it such a folder is refused (ValueError). Only the
        previous run's snapshots are deleted, never other files.
    keep_networks : bool
        Also return the network at the end of every round (``GrowthResult.networks``):
        what a family tree of the splits is drawn from.

    Returns
    -------
    GrowthResult

    Examples
    --------
    >>> import minisplit as ms
    >>> X, y = ms.datasets.rbf_teacher(n=32, seed=0)
    >>> config = ms.GrowthConfig(budget=4, steps_per_round=100)
    >>> result = ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, config)
    >>> result.history.rounds[-1].n_neurons, result.history.meta["stop_reason"]
    (4, 'budget')
    """
    config = GrowthConfig() if config is None else config
    resume = check_bool(resume, "resume")
    overwrite = check_bool(overwrite, "overwrite")
    data = (X, y, X_test, y_test)
    layers = _check_inputs(net, data, config, progress)
    run = _Run(net, data, config, layers, progress)
    if check_bool(keep_networks, "keep_networks"):
        run.networks = []
    if checkpoint is not None:
        run.folder = CheckpointFolder(checkpoint, run.stamp, resume, overwrite)
    try:
        if run.folder is not None and run.folder.saved is not None:
            run.restore(run.folder.saved)
            if run.networks is not None:  # the rounds before the checkpoint are not kept
                run.networks = [None] * (len(run.history.rounds) - 1) + [run.net]
        if not run.history.rounds:
            run.train(net, _NO_SURGERY)
        stop = None
        while stop is None:
            stop = run.grow_round()
    finally:
        if run.folder is not None:
            run.folder.close()
    history = run.history
    history.meta["stop_reason"], history.meta["stop_spectrum"] = stop
    if progress is not None:
        progress({"event": "stop", "round": len(history.rounds) - 1, "reason": stop[0]})
    return GrowthResult(run.net, history, run.networks)


# ---- the fixed-size baseline ----------------------------------------------------------------


def train_fixed(net, X, y, config, steps, X_test=None, y_test=None) -> GrowthResult:
    """The "fixed" baseline: ``net``'s architecture, fresh weights, ``steps`` updates from scratch.

    Same optimiser, batch size and seed as ``config``; no plateau stop, so it
    gets exactly ``steps`` updates (give it a grown run's ``history.total_steps``).
    The history has one round (round 0) and stop reason "steps".
    """
    rng = np.random.default_rng(config.seed)
    return _train_steps(net, (X, y, X_test, y_test), config, steps, rng, "fixed", fresh=True)


def fine_tune(net, X, y, config, steps, X_test=None, y_test=None,
              strategy="fine_tune") -> GrowthResult:
    """``steps`` updates of ``net`` as it is (its weights kept): training after pruning.

    As :func:`train_fixed` (a fresh optimiser of ``config``, its batch size and seed, no
    plateau stop, a history of one round with stop reason "steps" and ``strategy`` in its
    meta), but from ``net``'s own weights.
    """
    rng = np.random.default_rng(config.seed)
    return _train_steps(net, (X, y, X_test, y_test), config, steps, rng, strategy, fresh=False)


def _train_steps(net, data, config, steps, rng, strategy, fresh) -> GrowthResult:
    layers = _check_inputs(net, data, config, None)
    steps = check_int(steps, "steps", low=0)
    if fresh:
        net = reinitialized(net, rng)
    history = _new_history(strategy, config, layers, net)
    history.meta["stop_reason"] = "steps"
    optimizer = config.make_optimizer()
    net, fields = _train(net, data, optimizer, rng, config, steps, None, layers, 0, False)
    history.rounds.append(Round(**_NO_SURGERY, **fields))
    return GrowthResult(net, history)
