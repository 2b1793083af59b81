"""``minisplit verify``: every layer's derivatives against finite differences.

Builds one small network per layer type from the table of
:mod:`minisplit.testnets` and, for every activation and loss, compares the
hand-derived gradient, Hessian-vector product and dense Hessian with central
finite differences (:func:`minisplit.gradcheck.check_network`). Exits with
status 1 if any relative error exceeds :data:`minisplit.gradcheck.TOLERANCE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit import LOSSES, gradcheck
from minisplit.cli._args import positive_int, seed_value
from minisplit.testnets import ARCHITECTURES

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
#: What the table prints in the activation column of a layer without one (RBF).
NO_ACTIVATION = "-"


@dataclass(frozen=True)
class LayerType:
    """How to verify one layer type: a network of the table whose first layer has that type.

    ``architecture`` names a record of :data:`minisplit.testnets.ARCHITECTURES`; the
    network's other layers are verified along. ``layer`` is the class name of the layer at
    ``index`` (0, the first layer, unless that type cannot come first: a DepthwiseConv2d
    sits inside a separable block), ``batch_norm`` whether it is batch-normalised and
    ``mode`` the network's mode (which only matters with batch norm: each mode is its own
    row of the table).
    """

    architecture: str
    layer: str
    batch_norm: bool = False
    mode: str = "train"
    index: int = 0

    @property
    def kind(self) -> tuple:
        """``(layer, batch_norm, mode or None)``: what layer ``index`` of the network is."""
        return self.layer, self.batch_norm, self.mode if self.batch_norm else None

    @property
    def activations(self) -> tuple[str, ...]:
        """The table's activations of the architecture, or ``(NO_ACTIVATION,)`` if none apply."""
        return ARCHITECTURES[self.architecture].activations or (NO_ACTIVATION,)


#: The layer types ``verify`` covers, in table order.
LAYER_TYPES = {
    "Dense": LayerType("dense", "Dense"),
    "Dense+BN/train": LayerType("dense_bn_train", "Dense", True, "train"),
    "Dense+BN/eval": LayerType("dense_bn", "Dense", True, "eval"),
    "Conv2d": LayerType("conv_pool", "Conv2d"),
    "Conv2d+BN/train": LayerType("conv_bn_train", "Conv2d", True, "train"),
    "Conv2d+BN/eval": LayerType("conv_bn", "Conv2d", True, "eval"),
    "DWConv": LayerType("depthwise", "DepthwiseConv2d", index=1),
    "DWConv+BN/train": LayerType("depthwise_bn_train", "DepthwiseConv2d", True, "train", 1),
    "DWConv+BN/eval": LayerType("depthwise_bn", "DepthwiseConv2d", True, "eval", 1),
    "RBF": LayerType("rbf", "RBF"),
}


def verify_case(layer_type, activation, loss, seed=0, n_directions=4) -> dict:
    """Relative errors of one network's derivatives against finite differences.

    The network of ``layer_type`` is its architecture's from :mod:`minisplit.testnets`
    (random biases, parameters off their initialisation by N(0, 0.1^2) noise) with its
    default sizes, :data:`N_SAMPLES` samples and :data:`N_OUT` outputs; the network, its
    inputs, targets and the check's random directions are all drawn from ``seed``.
    ``activation`` is :data:`NO_ACTIVATION` for a layer type without one.

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
    architecture = ARCHITECTURES[LAYER_TYPES[layer_type].architecture]
    net, X, y = architecture.build(
        activation=None if activation == NO_ACTIVATION else activation,
        loss=loss,
        seed=rng,
        n=N_SAMPLES,
        n_out=N_OUT[loss],
    )
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
    header = f"{'layer':<15} {'activation':<10} {'loss':<13} " + " ".join(
        f"{title:>10}" for title in CHECKS.values()
    )
    lines = [header, "-" * (len(header) + 6)]
    for row in rows:
        errors = " ".join(f"{row[key]:>10.1e}" for key in CHECKS)
        status = "ok" if all(row[key] <= tolerance for key in CHECKS) else "FAIL"
        lines.append(
            f"{row['layer']:<15} {row['activation']:<10} {row['loss']:<13} {errors}  {status}"
        )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument(
        "--seed",
        type=seed_value,
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
