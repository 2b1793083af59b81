"""The layer protocol as code: ``Layer`` and the two roles a layer can play.

A layer is a small object holding its own parameters and knowing its own
mathematics. The network only composes layers; it never looks inside one.
Splitting and growth ask a layer's *role*, never ``hasattr``:

``Layer``          every layer: forward, backward and the R-operator (docs/derivatives.md).
``NeuronLayer``    has neurons to split (Dense, Conv2d, RBF): neuron parameters, splitting
                   matrices, and what one more neuron costs (docs/splitting.md).
``ReadingLayer``   reads the units of an earlier neuron layer *linearly* (Dense, Conv2d):
                   the weights on each unit, so a split can halve and copy them
                   (docs/surgery.md). RBF reads its input non-linearly and is no reader.

``UnitCarryingLayer``  passes the units of an earlier neuron layer one to one while carrying
                   per-unit parameters (DepthwiseConv2d): it may stand between a neuron
                   layer and its reader, and a surgery copies its per-unit rows.

``BatchNormMixin``  the optional batch normalisation inside Dense and Conv2d: parameters,
                   buffers and the mode (train: batch statistics, eval: running ones).

A parameter-free layer that keeps units apart (AvgPool2d, GlobalAvgPool2d, Flatten) sets
``passes_units = True``: it may stand between a neuron layer and its reader.

Naming (used in every layer module)
-----------------------------------
``X``      layer input, ``A`` layer output, ``Z`` pre-activation.
``dA``     dL/dA with A's shape (``dout``), ``dX`` dL/dX, ``dW`` dL/dW, ...
``V``      a direction in parameter space: a list shaped like ``params``.
``R_Z``    the R-operator image of Z: d/dt Z(params + t V) at t = 0.
``R_dW``   the R-operator image of dW, i.e. the block of ``H V`` for W.
``theta``  neuron rows (n, d): row i is neuron i's parameter vector.
``out_weights``  (n_units, ...): row u holds every weight of a reader that multiplies unit u.

Constructing layers
-------------------
``__init__`` validates the configuration (``_configure``) and draws the parameters
from the seed. :meth:`Layer.from_config` is the one other construction path: the
same ``_configure``, then given parameter arrays (no random draw). Copies, surgery
and :func:`minisplit.load` all go through it.
"""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np

from minisplit._checks import check_array, check_bool, check_choice, check_real
from minisplit.layers import _batchnorm


@functools.cache
def _settings(cls) -> tuple[list, list]:
    """The names a layer class's ``_configure`` takes, and those without a default (cached:
    every copy and surgery asks)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = [p for p in list(inspect.signature(cls._configure).parameters.values())[1:]
                  if p.kind in named]  # the settings, without self
    return [p.name for p in parameters], [p.name for p in parameters if p.default is p.empty]


class Layer:
    """A layer: parameters in ``param_names`` order, forward, backward and the R-operator.

    Subclasses implement ``_configure(**config)`` (validate and store the configuration),
    :meth:`config`, :meth:`param_shapes`, :meth:`check_input` and the four passes.
    """

    param_names: tuple[str, ...] = ()
    #: Arrays the layer keeps that are not trained (saved, loaded and copied with it; e.g.
    #: the prototype layer's masses), in this order.
    buffer_names: tuple[str, ...] = ()
    #: True for parameter-free layers that keep the previous layer's units apart.
    passes_units: bool = False

    # ---- construction and parameters ------------------------------------------------------

    def _configure(self, **config) -> None:
        """Validate and store the constructor arguments (everything but the seed)."""

    @classmethod
    def from_config(cls, config: dict, params=(), buffers=None) -> Layer:
        """A layer of this type with configuration ``config`` and (copies of) ``params``.

        The one construction path besides ``__init__``: no random draw, and the
        parameter shapes are checked against :meth:`param_shapes` before anything
        large is allocated. ``buffers`` (in ``buffer_names`` order): None gives the
        configuration's defaults.
        """
        new = cls._configured(config)
        new.set_params(params)
        new.set_buffers(new._default_buffers() if buffers is None else buffers)
        return new

    @classmethod
    def _configured(cls, config: dict) -> Layer:
        """A layer of this type with configuration ``config`` and no arrays yet."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict of {cls.__name__} settings, got {config!r}")
        takes, required = _settings(cls)
        missing = [name for name in required if name not in config]
        unknown = sorted(set(config) - set(takes))
        if unknown or missing:
            raise ValueError(f"config must hold {cls.__name__} settings ({', '.join(takes)}), "
                             f"got unknown {unknown} and missing {missing}")
        new = cls.__new__(cls)
        new._configure(**config)
        return new

    @classmethod
    def array_names(cls, config: dict) -> tuple[tuple, tuple]:
        """``(param_names, buffer_names)`` of a layer of this type with configuration
        ``config`` (they may depend on it: a batch-normalised Dense has gamma and beta)."""
        blank = cls._configured(config)
        return tuple(blank.param_names), tuple(blank.buffer_names)

    def in_mode(self, mode: str) -> Layer:
        """This layer as it computes in ``mode`` ("train" or "eval"; Network.mode).

        Only a batch-normalised layer depends on the mode (it returns a shallow copy
        set to it); every other layer returns itself.
        """
        return self

    def _default_buffers(self) -> list:
        """The buffers of a fresh layer of this configuration (none by default)."""
        return []

    @property
    def buffers(self) -> list[np.ndarray]:
        """The live buffer arrays, in ``buffer_names`` order."""
        return [getattr(self, name) for name in self.buffer_names]

    def set_buffers(self, values) -> None:
        """Replace the buffers with float64 copies of ``values`` (finite, shaped like now
        or like :meth:`_default_buffers`)."""
        values = list(values)
        if len(values) != len(self.buffer_names):
            raise ValueError(f"{type(self).__name__} has {len(self.buffer_names)} buffers, "
                             f"got {len(values)}")
        shapes = [np.shape(v) for v in self._default_buffers()]
        for name, value, shape in zip(self.buffer_names, values, shapes):
            if np.shape(value) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(value)}")
            setattr(self, name, check_array(value, name).copy())

    def config(self) -> dict:
        """JSON-able constructor arguments; ``from_config(config(), params)`` rebuilds the layer."""
        return {}

    def _check_memory(self) -> None:
        """MemoryError naming the configuration when its parameters cannot be allocated."""
        count = sum(int(np.prod(shape, dtype=np.float64)) for shape in self.param_shapes().values())
        try:
            np.empty(count)
        except (MemoryError, ValueError):
            raise MemoryError(
                f"{self!r} needs {count * 8 / 2**30:.3g} GiB for its {count:,} parameters"
            ) from None

    def param_shapes(self) -> dict:
        """``{name: shape}`` of the parameters this configuration has."""
        return {}

    @property
    def params(self) -> list[np.ndarray]:
        """The live parameter arrays, in ``param_names`` order."""
        return [getattr(self, name) for name in self.param_names]

    def set_params(self, values) -> None:
        """Replace the parameters with float64 copies of ``values`` (same shapes).

        Raises TypeError for arrays that do not hold real numbers (complex included) and
        ValueError for a wrong count, a wrong shape, NaN or inf.
        """
        values = list(values)
        if len(values) != len(self.param_names):
            raise ValueError(
                f"{type(self).__name__} has {len(self.param_names)} parameter arrays, "
                f"got {len(values)}"
            )
        shapes = self.param_shapes()
        for name, value in zip(self.param_names, values):
            if np.shape(value) != shapes[name]:
                raise ValueError(f"{name} must have shape {shapes[name]}, got {np.shape(value)}")
        self._assign([check_array(v, name) for name, v in zip(self.param_names, values)])

    def _assign(self, values) -> None:
        """Set the parameters to float64 copies of ``values``, unchecked (inner loops)."""
        for name, value in zip(self.param_names, values):
            setattr(self, name, np.array(value, dtype=np.float64))

    def copy(self) -> Layer:
        """An independent copy: same configuration, copied parameter and buffer arrays."""
        return type(self).from_config(self.config(), self.params, self.buffers)

    # ---- the passes (docs/derivatives.md) ---------------------------------------------------

    def check_input(self, X: np.ndarray) -> None:
        """Raise ValueError unless ``X`` is an input this layer accepts."""
        raise NotImplementedError

    def forward(self, X):
        """``(A, cache)``: the output and whatever the backward passes need."""
        raise NotImplementedError

    def backward(self, dA, cache, need_dX=True):
        """``(dX, grads)``: ``grads`` shaped like ``params``; ``dX`` None when not needed."""
        raise NotImplementedError

    def r_forward(self, R_X, V, cache):
        """``(R_A, r_cache)``: Pearlmutter's forward R-pass (``R_X`` None for the first layer)."""
        raise NotImplementedError

    def r_backward(self, dA, R_dA, cache, r_cache, V, need_dX=True):
        """``(dX, R_dX, R_grads)``: the backward pass and its R-image together."""
        raise NotImplementedError

    def flops(self, in_shape) -> int:
        """Multiply-adds of the forward pass per sample of shape ``in_shape`` (0 if not counted)."""
        return 0

    def penalty(self, cache) -> float:
        """A term the layer adds to the loss, from its forward cache (0: none).

        A layer with a penalty adds its gradient in :meth:`backward` and its R-image in
        :meth:`r_backward` itself (the prototype layer's R1 and R2)."""
        return 0.0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class NeuronLayer(Layer):
    """A layer of neurons that can be split (docs/splitting.md).

    Neuron i has a parameter vector theta_i of length :attr:`neuron_dim` (Dense and
    Conv2d: ``concatenate([W[i].ravel(), [b[i]]])``, bias last; RBF: ``centers[i]``).
    The splitting matrix of neuron i is

        S_i = sum_n g_{n,i} Hessian_theta a_i(x_n),   g = dA (1/N already inside).
    """

    #: The activation whose second derivative forms S (None for a layer without one, RBF).
    act = None

    @property
    def n_neurons(self) -> int:
        raise NotImplementedError

    @property
    def neuron_dim(self) -> int:
        raise NotImplementedError

    def neuron_params(self) -> np.ndarray:
        """A copy of every theta_i as rows (n, d)."""
        raise NotImplementedError

    def _params_from_theta(self, theta, parents) -> list:
        """The parameter arrays whose neuron rows are ``theta`` (n', d); ``parents`` (n',)
        says where each row's other per-neuron parameters come from (see
        :meth:`with_neuron_params`)."""
        raise NotImplementedError

    def _resized(self, n: int) -> dict:
        """The configuration changes that give this layer ``n`` neurons."""
        raise NotImplementedError

    def neuron_weights(self) -> np.ndarray | None:
        """The weights with which the layer itself reads its neurons (n,), or None.

        A layer with a penalty on its own outputs (the prototype layer's masses) reads
        its neurons too: a surgery scales these weights like the reader's out-weights
        (a split halves them), so a split at eps = 0 keeps the penalty.
        """
        return None

    def _neuron_buffers(self, n: int, weights, parents) -> list | None:
        """The buffers of a resized layer of ``n`` neurons with these neuron weights,
        new neuron i's per-neuron state taken from old neuron ``parents[i]``."""
        return None

    def with_neuron_params(self, theta, weights=None, parents=None) -> NeuronLayer:
        """A new layer of this type whose neurons are the rows of ``theta`` (n', d).

        n' may differ from n (appended rows are new neurons); the rest of the
        configuration is kept. ``weights`` (n',): the new :meth:`neuron_weights`, for a
        layer that has them (None: the defaults). ``parents`` (n',) ints in [-1, n): the
        old neuron whose state outside theta (a batch-normalised layer's gamma, beta and
        running statistics) new neuron i takes, -1 for a brand-new neuron (the defaults);
        None means ``i`` for the first min(n, n') rows and -1 after. Layers without such
        state ignore it.
        """
        theta = np.asarray(theta, dtype=np.float64)
        d = self.neuron_dim
        if theta.ndim != 2 or theta.shape[1] != d or theta.shape[0] == 0:
            raise ValueError(f"theta must have shape (n, {d}) with n > 0, got {theta.shape}")
        parents = self._check_parents(parents, theta.shape[0])
        config = {**self.config(), **self._resized(theta.shape[0])}
        buffers = self._neuron_buffers(theta.shape[0], weights, parents)
        return type(self).from_config(config, self._params_from_theta(theta, parents), buffers)

    def _check_parents(self, parents, n_new) -> np.ndarray:
        """``parents`` as int indices (n_new,) in [-1, n) (None: identity, then -1)."""
        n = self.n_neurons
        if parents is None:
            return np.where(np.arange(n_new) < n, np.arange(n_new), -1)
        parents = np.asarray(parents)
        if parents.size == 0:
            parents = parents.astype(np.int64)
        if not np.issubdtype(parents.dtype, np.integer):
            raise TypeError(f"parents must be integer indices, got dtype {parents.dtype}")
        if parents.shape != (n_new,) or parents.min() < -1 or parents.max() >= n:
            raise ValueError(f"parents must be ({n_new},) indices in [-1, {n}), got {parents}")
        return parents

    def splitting_matrices(self, dA, cache, d2f=None) -> np.ndarray:
        """``(n, d, d)``: S_i for every neuron; ``d2f`` replaces the activation's f''."""
        raise NotImplementedError

    def splitting_operator(self, dA, cache, d2f=None):
        """The matrix-free product as a function ``V (n, d) -> (n, d)``, row i = S_i V[i].

        Everything that does not depend on V (the curvature coefficients, the inputs'
        layout) is computed here, once: an eigen-solver calls the function once per
        iteration. ``dA`` and ``cache`` must not change while the function is in use.
        """
        raise NotImplementedError

    def splitting_matvec(self, dA, cache, V, d2f=None) -> np.ndarray:
        """``(n, d)``: row i is S_i V[i], without forming S (matrix-free); one call of
        :meth:`splitting_operator`."""
        V = check_array(V, "V")
        shape = (self.n_neurons, self.neuron_dim)
        if V.shape != shape:
            raise ValueError(f"V must have shape {shape}, got {V.shape}")
        return self.splitting_operator(dA, cache, d2f)(V)

    def params_per_neuron(self) -> int:
        """Parameters one neuron owns: theta, and per-neuron parameters outside it (a
        batch-normalised layer's gamma and beta)."""
        return sum(p.size for p in self.params) // self.n_neurons

    def output_jacobian(self, cache, samples=slice(None)):
        """``unit -> (H, W, N, d)``: J[y, x, n, :] = d a_u(x_n)[y, x] / d theta_u, the gradient
        of each entry of unit u's output map with respect to its own neuron's parameters (a
        layer whose units a unit-carrying layer reads non-linearly needs it for its splitting
        matrices: docs/splitting.md, "Separable blocks"), for the ``samples`` (a slice of the
        cache's). The function is set up once and gives one unit's maps at a time, the
        samples and the d directions innermost."""
        raise NotImplementedError(
            f"{type(self).__name__} has no output Jacobian: its splitting matrices cannot be "
            "read through a unit-carrying layer"
        )

    def flops_per_neuron(self, in_shape) -> int:
        """Multiply-adds one neuron costs per sample (weights x output positions, bias excluded)."""
        raise NotImplementedError

    def flops(self, in_shape) -> int:
        return self.n_neurons * self.flops_per_neuron(in_shape)


class BatchNormMixin:
    """Batch normalisation inside a neuron layer (Dense, Conv2d): Y = gamma Zh + beta.

    With ``batch_norm`` on, the layer's per-neuron parameters are ``gamma`` and ``beta``
    (no bias), its buffers ``running_mean`` and ``running_var``, and it computes in
    :attr:`mode`: "train" normalises with the batch statistics, "eval" with the running
    ones (:mod:`minisplit.layers._batchnorm`). ``gamma_l1`` >= 0 adds network slimming's
    sparsity penalty gamma_l1 * sum |gamma| to the loss (:meth:`penalty`). A network sets
    the mode of its layers
    per forward pass (``Network.mode`` and :meth:`Layer.in_mode`); a layer called
    directly computes in its own ``mode`` ("train" unless set by ``in_mode``). The
    forward cache records the mode, so the backward passes follow the forward.
    """

    mode = "train"

    def _configure_batch_norm(self, batch_norm, bn_eps, gamma_l1=0.0):
        self.batch_norm = check_bool(batch_norm, "batch_norm")
        self.bn_eps = check_real(bn_eps, "bn_eps", low=0, low_open=True)
        self.gamma_l1 = check_real(gamma_l1, "gamma_l1", low=0)
        if self.gamma_l1 and not self.batch_norm:
            raise ValueError(f"gamma_l1 must be 0 for a layer without batch_norm (it penalises "
                             f"gamma), got {self.gamma_l1!r}")
        # instance attributes: the arrays a layer has depend on its configuration
        self.param_names = ("W", "gamma", "beta") if self.batch_norm else ("W", "b")
        self.buffer_names = ("running_mean", "running_var") if self.batch_norm else ()

    def _batch_norm_config(self) -> dict:
        """The keys only when on: configs (and files) of layers without BN, or without the
        gamma penalty, stay as before."""
        if not self.batch_norm:
            return {}
        return {"batch_norm": True, "bn_eps": self.bn_eps,
                **({"gamma_l1": self.gamma_l1} if self.gamma_l1 else {})}

    def penalty(self, cache) -> float:
        """The sparsity penalty of network slimming, gamma_l1 * sum_i |gamma_i| (0 when off).

        It depends on gamma alone, not on the data. Its gradient, gamma_l1 * sign(gamma)
        (0 at gamma_i = 0 exactly: the subgradient np.sign picks), is added to dgamma in
        ``backward`` (:meth:`_gamma_l1_grad`); its second derivative is 0 away from
        gamma_i = 0, so ``r_backward`` adds nothing (docs/pruning.md, "The penalty").
        """
        if not self.gamma_l1:
            return 0.0
        return self.gamma_l1 * float(np.abs(self.gamma).sum())

    def _gamma_l1_grad(self, dgamma):
        """dgamma + gamma_l1 * sign(gamma) (n,): the penalty's (sub)gradient added."""
        return dgamma + self.gamma_l1 * np.sign(self.gamma) if self.gamma_l1 else dgamma

    def _channel_shapes(self, n) -> dict:
        """Shapes of the per-neuron parameters besides W."""
        return {"gamma": (n,), "beta": (n,)} if self.batch_norm else {"b": (n,)}

    # theta_i = [W[i].ravel(), b[i]], C order, the bias last; with batch norm W[i] alone
    # (BN's shift replaces the bias). W[i] is a row (Dense), a filter (Conv2d) or a
    # channel's taps (DepthwiseConv2d): ``param_shapes()["W"][1:]``.

    def neuron_params(self):
        W = self.W.reshape(self.W.shape[0], -1)  # (n, K)
        return W.copy() if self.batch_norm else np.hstack([W, self.b[:, None]])  # (n, d)

    def _params_from_theta(self, theta, parents):
        shape = self.param_shapes()["W"][1:]  # one neuron's weights
        W = theta[:, : int(np.prod(shape))].reshape(theta.shape[0], *shape)
        return [W, *self._channel_params(parents)] if self.batch_norm else [W, theta[:, -1]]

    def _default_neuron_params(self, n) -> list:
        """A fresh layer's per-neuron parameters: b = 0, or gamma = 1 and beta = 0."""
        return [np.ones(n), np.zeros(n)] if self.batch_norm else [np.zeros(n)]

    def _default_buffers(self) -> list:
        n = self.n_neurons
        return [np.zeros(n), np.ones(n)] if self.batch_norm else []

    @staticmethod
    def _inherit(values, parents, default) -> np.ndarray:
        """``values[parents]``, ``default`` where a parent is -1 (a brand-new neuron)."""
        return np.where(parents >= 0, values[np.maximum(parents, 0)], default)

    def _channel_params(self, parents) -> list:
        """gamma and beta of a resized layer, inherited from ``parents``."""
        return [self._inherit(self.gamma, parents, 1.0), self._inherit(self.beta, parents, 0.0)]

    def _neuron_buffers(self, n, weights, parents):
        if not self.batch_norm:
            return None
        return [self._inherit(self.running_mean, parents, 0.0),
                self._inherit(self.running_var, parents, 1.0)]

    def in_mode(self, mode):
        check_choice(mode, "mode", _batchnorm.MODES)
        if not self.batch_norm or mode == self.mode:
            return self
        twin = copy.copy(self)  # the arrays are shared, only the mode differs
        twin.mode = mode
        return twin

    def _normalise(self, Z):
        """``(Y, bn_cache)`` for the pre-activation rows Z (M, c) in this layer's mode."""
        return _batchnorm.forward(Z, self.gamma, self.beta, self.mode, self.running_mean,
                                  self.running_var, self.bn_eps)

    def _fold_scale(self, bn_cache):
        """c_i = gamma_i / sqrt(running_var_i + eps) (c,) of the folded eval-mode BN, or 1
        without batch norm; ValueError for a forward pass in train mode."""
        if bn_cache is None:
            return 1.0
        if bn_cache.mode != "eval":
            raise ValueError(
                "splitting a batch-normalised layer needs a forward pass in eval mode (the "
                "BN folded into the neuron with its running statistics; docs/splitting.md): "
                "call net.set_mode('eval') first (and set_running_statistics(net, X))"
            )
        return self.gamma / np.sqrt(self.running_var + self.bn_eps)


class ReadingLayer(Layer):
    """A layer that reads the units of an earlier neuron layer linearly (docs/surgery.md).

    Its weights on unit u (``out_weights(n_units)[u]``) multiply unit u's output and
    nothing else, so splitting unit u can copy and halve them.
    """

    def out_weights(self, n_units: int) -> np.ndarray:
        """A copy of the weights on each of the ``n_units`` units it reads, (n_units, ...).

        Dense: the block of ``n_in // n_units`` columns of unit u (NCHW flatten
        keeps a channel's H*W columns together); Conv2d: the input-channel slice
        ``W[:, u]``.
        """
        raise NotImplementedError

    def with_out_weights(self, out_weights) -> ReadingLayer:
        """A new layer reading ``out_weights.shape[0]`` units with these weights."""
        raise NotImplementedError

    def params_per_unit(self, n_units: int) -> int:
        """Parameters one more unit read adds to this layer."""
        raise NotImplementedError

    def flops_per_unit(self, in_shape, n_units: int) -> int:
        """Multiply-adds per sample one more unit read adds to this layer."""
        raise NotImplementedError


class UnitCarryingLayer(Layer):
    """A layer whose unit u reads only unit u of its input, with parameters of its own per
    unit (DepthwiseConv2d: channel u's filter) (docs/surgery.md, "Separable blocks").

    It may stand between a neuron layer and its reader, like a ``passes_units`` layer: a
    surgery of the neuron layer rewrites its per-unit rows with :meth:`with_units`, the
    same ``parents`` the neuron layer gets (a split copies the parent's row unchanged, so
    both offspring see the same filter and the reader's halved weights keep the function
    at eps = 0). Its number of units is its input's: it cannot grow on its own.
    """

    def carry_jacobian(self, dA, cache, samples=slice(None)):
        """``(J, unit, need_out) -> (C, Jz, J_out)``: how the splitting matrices of the neuron
        layer before see this layer's curvature (docs/splitting.md, "Separable blocks").

        Set up once for the ``samples`` (a slice of the cache's; ``dA`` the gradient at this
        layer's output, of every sample), the function takes ``J`` (H, W, N, d), as
        :meth:`NeuronLayer.output_jacobian` gives it: the gradient of each entry of the input
        map of unit u with respect to the neuron parameters theta_u. It returns ``Jz`` (M, d),
        that of this layer's pre-activation, and ``C`` (M,) = g f''(z) (times a folded BN's
        scale squared), rows m = (y, x, n) alike, so that sum_m C[m] Jz[m] Jz[m]^T is this
        layer's term of S_u; and ``J_out`` (Ho, Wo, N, d), the gradient of the output map,
        for the next carrying layer (None unless ``need_out``)."""
        raise NotImplementedError

    def with_units(self, parents) -> UnitCarryingLayer:
        """A new layer of ``len(parents)`` units, unit i with the per-unit parameters (and
        buffers) of old unit ``parents[i]``, or a brand-new unit's defaults where -1."""
        raise NotImplementedError

    def params_per_unit(self, n_units: int) -> int:
        """Parameters one more carried unit adds to this layer."""
        raise NotImplementedError

    def flops_per_unit(self, in_shape, n_units: int) -> int:
        """Multiply-adds per sample one more carried unit adds to this layer."""
        raise NotImplementedError
