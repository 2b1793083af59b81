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
``r_backward(dA, R_dA, cache, r_cache, V, need_dX=True) -> (dX, R_dX, R_grads)``
    The backward pass and its R-image together; ``dX`` and ``R_dX`` are None
    when not needed (the first layer).
``config() -> dict``
    JSON-able constructor arguments; ``type(layer)(**config())`` rebuilds the
    architecture (weights travel separately).

Parameter-free layers (pooling, flatten) have ``param_names = ()``.

Splitting protocol (docs/splitting.md)
--------------------------------------
A *neuron layer* (Dense, Conv2d, RBF) owns ``n_neurons`` neurons, each with a
parameter vector theta_i of length ``neuron_dim`` (Dense and Conv2d:
``concatenate([W[i].ravel(), [b[i]]])``, bias last; RBF: ``centers[i]``):

``neuron_params() -> (n, d)``
    A copy of all theta_i as rows.
``with_neuron_params(theta) -> Layer``
    A new layer of the same type whose neurons are the rows of ``theta``
    (n', d); n' may differ from n (new rows are appended neurons).
``splitting_matrices(dA, cache, d2f=None) -> (n, d, d)``
    S_i = sum_n g_{n,i} * Hessian_theta of neuron i's output at sample n, with
    g = dA (1/N already inside). ``d2f`` replaces the activation's second
    derivative (the documented ReLU surrogate); memory O(n d^2 + chunk d).
``splitting_matvec(dA, cache, V, d2f=None) -> (n, d)``
    Row i is S_i V[i], without forming S (matrix-free).

A *reading layer* (Dense, Conv2d) can have the units it reads regrouped:

``input_weights(n_units) -> array (n_units, ...)``
    A copy of the weights that read each of the ``n_units`` units of the
    previous neuron layer (Dense: the block of ``n_in // n_units`` columns of
    unit u, since NCHW flatten keeps a channel's H*W columns together; Conv2d:
    the input-channel slice ``W[:, u]``).
``with_input_weights(W_in) -> Layer``
    A new layer reading ``W_in.shape[0]`` units with these weights.

Layers between a neuron layer and its reader (AvgPool2d, Flatten) keep units
apart and have ``passes_units = True``. A layer that reads its input
non-linearly (RBF) is not a reading layer: a split unit cannot feed it.
"""

from __future__ import annotations

import copy

import numpy as np


class Layer:
    """Base class: parameter bookkeeping shared by all layers."""

    param_names: tuple[str, ...] = ()
    #: True for parameter-free layers that keep the previous layer's units apart.
    passes_units: bool = False

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
        new = copy.copy(self)
        for name in self.param_names:
            setattr(new, name, getattr(self, name).copy())
        return new

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"
