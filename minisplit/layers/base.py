"""The layer protocol every minisplit layer follows.

A layer is a small object holding its own parameters and knowing its own
mathematics. The network only composes layers; it never looks inside one.

Naming (used in every layer module)
-----------------------------------
``X``      layer input, ``A`` layer output, ``Z`` pre-activation.
``dA``     dL/dA with A's shape (``dout``), ``dX`` dL/dX, ``dW`` dL/dW, ...
``V``      a direction in parameter space: a list shaped like ``params``.
``R_Z``    the R-operator image of Z: d/dt Z(params + t V) at t = 0.
``R_dW``   the R-operator image of dW, i.e. the block of ``H V`` for W.

Methods
-------
``forward(X) -> (A, cache)``
    The output and whatever the backward passes need (no hidden recomputation).
``backward(dA, cache, need_dX=True) -> (dX, grads)``
    ``grads`` is a list shaped like ``params``; ``dX`` is None when not needed.
``r_forward(R_X, V, cache) -> (R_A, r_cache)``
    Pearlmutter's forward R-pass. ``R_X`` is None when the input does not
    depend on the parameters (the first layer).
``r_backward(dA, R_dA, cache, r_cache, V) -> (dX, R_dX, R_grads)``
    The backward pass and its R-image together.
``config() -> dict``
    JSON-able constructor arguments; ``type(layer)(**config())`` rebuilds the
    architecture (weights travel separately).

Parameter-free layers (pooling, flatten) have ``param_names = ()``.
"""

from __future__ import annotations

import numpy as np


class Layer:
    """Base class: parameter bookkeeping shared by all layers."""

    param_names: tuple[str, ...] = ()

    @property
    def params(self) -> list[np.ndarray]:
        """The live parameter arrays, in ``param_names`` order."""
        return [getattr(self, name) for name in self.param_names]

    def set_params(self, values) -> None:
        """Replace the parameters with float64 copies of ``values`` (same shapes)."""
        values = list(values)
        if len(values) != len(self.param_names):
            raise ValueError(
                f"{type(self).__name__} has {len(self.param_names)} parameter arrays, "
                f"got {len(values)}"
            )
        for name, value in zip(self.param_names, values):
            old = getattr(self, name)
            value = np.array(value, dtype=np.float64)
            if value.shape != old.shape:
                raise ValueError(f"{name} must have shape {old.shape}, got {value.shape}")
            setattr(self, name, value)

    def config(self) -> dict:
        """JSON-able constructor arguments (see the module docstring)."""
        return {}

    def copy(self) -> Layer:
        """An independent copy: same architecture, copied parameter arrays."""
        new = type(self)(**self.config())
        new.set_params(self.params)
        return new

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
