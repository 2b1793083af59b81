"""``minisplit verify``: every layer's derivatives against finite differences.

Builds one small network per layer type and, for every activation and loss,
compares the hand-derived gradient, Hessian-vector product and dense Hessian
with central finite differences (:func:`minisplit.gradcheck.check_network`).
Exits with status 1 if any relative error exceeds
:data:`minisplit.gradcheck.TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from minisplit import (
    ACTIVATIONS,
    LOSSES,
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    Network,
    flatten,
    gradcheck,
)
from minisplit.cli._args import positive_int

#: Samples in each verification problem.
N_SAMPLES = 4
#: Output width of the mse networks and number of classes of the cross-entropy ones.
N_OUT = {"mse": 2, "cross_entropy": 3}
#: Keys of :func:`gradcheck.check_network`'s result, with their column titles.
CHECKS = {
    "gradient": "gradient",
    "hvp": "hvp",
    "hessian_symmetry": "H symmetry",
    "hessian_vs_hvp": "H u vs hvp",
}


# ---- verify: one builder per layer type -----------------------------------------------
# A builder takes (activation, n_out, rng) and returns the layers and an input X.


def _dense_problem(activation, n_out, rng):
    """Dense -> Dense on inputs (N, 3)."""
    layers = [Dense(3, 4, activation=activation, seed=rng), Dense(4, n_out, "identity", seed=rng)]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 3))


def _conv_problem(activation, n_out, rng):
    """Conv2d -> AvgPool2d -> Flatten -> Dense on images (N, 2, 5, 5)."""
    layers = [
        Conv2d(2, 2, kernel_size=2, activation=activation, seed=rng),  # (N, 2, 4, 4)
        AvgPool2d(2),  # (N, 2, 2, 2)
        Flatten(),  # (N, 8)
        Dense(8, n_out, "identity", seed=rng),
    ]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 2, 5, 5))


def _rbf_problem(activation, n_out, rng):
    """RBF -> Dense on inputs (N, 2); the RBF layer has no activation."""
    layers = [RBF(2, 3, width=1.0, seed=rng), Dense(3, n_out, "identity", seed=rng)]
    return layers, rng.uniform(-1.0, 1.0, size=(N_SAMPLES, 2))


@dataclass(frozen=True)
class LayerType:
    """How to verify one layer type: its problem builder and its activations."""

    build: Callable
    activations: tuple[str, ...]


NO_ACTIVATION = "-"

#: The layer types ``verify`` covers, in table order.
LAYER_TYPES = {
    "Dense": LayerType(_dense_problem, tuple(ACTIVATIONS)),
    "Conv2d": LayerType(_conv_problem, tuple(ACTIVATIONS)),
    "RBF": LayerType(_rbf_problem, (NO_ACTIVATION,)),
}


def _targets(loss, rng):
    """Random targets for N_SAMPLES samples: (N, k) floats for mse, (N,) labels otherwise."""
    n_out = N_OUT[loss]
    if loss == "mse":
        return rng.normal(size=(N_SAMPLES, n_out))  # (N, k)
    return rng.integers(0, n_out, size=N_SAMPLES)  # (N,)


def verify_case(layer_type, activation, loss, seed=0, n_directions=4) -> dict:
    """Relative errors of one network's derivatives against finite differences.

    The network of ``layer_type`` gets random parameters (the initialisation
    plus N(0, 0.1^2) noise, so no bias sits at exactly zero), random inputs in
    [-1, 1] and random targets, all drawn from ``seed``.

    Returns
    -------
    dict
        ``gradcheck.check_network``'s result: ``{"gradient": e, "hvp": e,
        "hessian_symmetry": e, "hessian_vs_hvp": e}``.

    Examples
    --------
    >>> errors = verify_case("Dense", "tanh", "mse")
    >>> max(errors.values()) < gradcheck.TOLERANCE
    True
    """
    rng = np.random.default_rng(seed)
    layers, X = LAYER_TYPES[layer_type].build(activation, N_OUT[loss], rng)
    net = Network(layers, loss)
    net = net.with_params(flatten(net.params) + 0.1 * rng.standard_normal(net.n_params))
    y = _targets(loss, rng)
    return gradcheck.check_network(net, X, y, seed=rng, n_directions=n_directions)


def verify_table(seed=0, n_directions=4) -> list[dict]:
    """One row per layer type x activation x loss, with the errors of :func:`verify_case`."""
    rows = []
    for layer_type, spec in LAYER_TYPES.items():
        for activation in spec.activations:
            for loss in LOSSES:
                errors = verify_case(layer_type, activation, loss, seed, n_directions)
                names = {"layer": layer_type, "activation": activation, "loss": loss}
                rows.append({**names, **errors})
    return rows


def format_table(rows, tolerance) -> str:
    """The rows as aligned text, each error in scientific notation, then ok / FAIL."""
    header = f"{'layer':<7} {'activation':<10} {'loss':<13} " + " ".join(
        f"{title:>10}" for title in CHECKS.values()
    )
    lines = [header, "-" * (len(header) + 6)]
    for row in rows:
        errors = " ".join(f"{row[key]:>10.1e}" for key in CHECKS)
        status = "ok" if all(row[key] <= tolerance for key in CHECKS) else "FAIL"
        lines.append(
            f"{row['layer']:<7} {row['activation']:<10} {row['loss']:<13} {errors}  {status}"
        )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random networks, data and directions (default: 0)",
    )
    parser.add_argument(
        "--directions",
        type=positive_int,
        default=4,
        metavar="N",
        help="random directions per finite-difference check (default: 4)",
    )


def run(args) -> int:
    """Print the verification table; 0 if every error is within tolerance, else 1."""
    tolerance = gradcheck.TOLERANCE
    rows = verify_table(args.seed, args.directions)
    print(
        "Relative error of each hand-derived derivative against central finite differences\n"
        f"(step {gradcheck.STEP:g}, {args.directions} random directions, tolerance {tolerance:g})."
    )
    print(format_table(rows, tolerance))
    n_failed = sum(any(row[key] > tolerance for key in CHECKS) for row in rows)
    if n_failed:
        print(f"FAILED: {n_failed} of {len(rows)} networks exceed the tolerance {tolerance:g}.")
        return 1
    print(f"All {len(rows)} networks within tolerance {tolerance:g}.")
    return 0


# ---- grow: the main job ------------------------------------------------------------------
