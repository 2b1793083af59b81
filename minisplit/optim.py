"""First-order optimisers on lists of parameter arrays: SGD with momentum and Adam.

An optimiser maps ``(params, grads)`` to *new* parameter arrays; the caller's
arrays are never written to. Its state (velocity, moments) is a dict of lists
shaped like ``params``, created lazily at the first step.

When the architecture changes (a split appends neurons), the state must follow
(docs/training.md, "After a surgery"). The optimiser knows nothing of networks or
surgery: whoever changes the architecture (the growth loop) hands
:meth:`after_surgery` a function that maps a list shaped like the old parameters to
one shaped like the new (:func:`minisplit.carry_state` builds it: an appended neuron
takes its parent's rows, a brand-new neuron zeros), or asks for a reset.
"""

from __future__ import annotations

import warnings

import numpy as np

from minisplit._checks import check_array, check_callable, check_choice, check_int, check_real

SURGERY_MODES = ("inherit", "reset")


def _check_arrays(arrays, name) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be a list of arrays, got {type(arrays).__name__}")
    return [check_array(a, name) for a in arrays]


def _shapes(arrays) -> list[tuple]:
    return [np.shape(a) for a in arrays]


class _Optimizer:
    """Shared bookkeeping: lazy state, step count, surgery, checkpoints.

    A subclass sets ``name`` and ``state_keys`` and implements
    ``_update(params, grads, state) -> (new_params, new_state)``, which reads
    ``self.t`` (already incremented for the current step).
    """

    name: str = ""
    state_keys: tuple[str, ...] = ()
    #: True for an optimiser that runs on the whole training set at once (L-BFGS):
    #: :func:`minisplit.train` hands it the full-batch loss instead of stepping it.
    full_batch: bool = False

    def __init__(self):
        self._state: dict[str, list[np.ndarray]] = {}
        self.t = 0

    # ---- the step ---------------------------------------------------------------------

    def step(self, params, grads) -> list[np.ndarray]:
        """One update; returns new arrays shaped like ``params``.

        Parameters
        ----------
        params, grads : list of ndarray
            Same length, matching shapes (e.g. ``net.params`` and the gradient
            from ``net.loss_and_grad``).

        Returns
        -------
        list of ndarray
            The updated parameters (new arrays).
        """
        params = _check_arrays(params, "params")
        grads = _check_arrays(grads, "grads")
        if _shapes(grads) != _shapes(params):
            raise ValueError(
                f"grads must have the shapes of params {_shapes(params)}, got {_shapes(grads)}"
            )
        return self._advance(params, grads)

    def _advance(self, params, grads) -> list[np.ndarray]:
        """:meth:`step` without the input checks (the training loop's inner step)."""
        if not self._state:
            self._state = {k: [np.zeros_like(p) for p in params] for k in self.state_keys}
        self._check_state_matches(params, "params")
        self.t += 1
        new_params, self._state = self._update(params, grads, self._state)
        return new_params

    def _check_state_matches(self, arrays, name):
        held = _shapes(self._state[self.state_keys[0]])
        if held != _shapes(arrays):
            raise ValueError(
                f"optimiser state has shapes {held} but {name} have shapes {_shapes(arrays)}; "
                "call after_surgery when the architecture changes"
            )

    def _update(self, params, grads, state):
        raise NotImplementedError

    # ---- state --------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, list[np.ndarray]]:
        """Copies of the state lists (empty dict before the first step)."""
        return {k: [a.copy() for a in lst] for k, lst in self._state.items()}

    def reset(self) -> None:
        """Forget the state and the step count (re-initialised at the next step)."""
        self._state = {}
        self.t = 0

    def after_surgery(self, carry, mode="inherit") -> None:
        """Adapt the state to a change of the parameter shapes (a surgery).

        Parameters
        ----------
        carry : callable
            ``list of arrays shaped like the old params -> list shaped like the new``.
            The growth loop passes ``lambda arrays: carry_state(net_before, layer,
            arrays, parents)`` (:func:`minisplit.carry_state`): old rows unchanged,
            an appended neuron's rows (its parameters and the reader's weights on it)
            copy its parent's, a brand-new neuron's rows are zeros.
        mode : {"inherit", "reset"}
            ``"inherit"``: every state list goes through ``carry``; ``t`` is kept.
            ``"reset"``: state and ``t`` cleared, as for a fresh optimiser (``carry``
            is not called).

        Notes
        -----
        For several layers grown at once (deepest first), call this once per layer
        in the same order, each ``carry`` mapping from the shapes just before that
        layer's surgery.
        """
        check_callable(carry, "carry", "a callable mapping a list of state arrays")
        check_choice(mode, "mode", SURGERY_MODES)
        if mode == "reset":
            self.reset()
            return
        if not self._state:
            return
        old = {k: _shapes(lst) for k, lst in self._state.items()}
        self._state = {k: [np.asarray(a) for a in carry(lst)] for k, lst in self._state.items()}
        if len({tuple(_shapes(lst)) for lst in self._state.values()}) > 1:
            raise ValueError(f"carry gave state lists of different shapes from {old}")

    def state_dict(self) -> dict:
        """Plain arrays and numbers for a checkpoint: ``{"t": int, "<key>.<i>": array}``.

        The flat keys suit ``np.savez``; :meth:`load_state_dict` reads them back.
        """
        out = {"t": self.t}
        for key, lst in self._state.items():
            out.update({f"{key}.{i}": a.copy() for i, a in enumerate(lst)})
        return out

    def load_state_dict(self, d) -> None:
        """Restore what :meth:`state_dict` gave (0-d arrays accepted for ``t``)."""
        d = dict(d)
        if "t" not in d:
            raise ValueError(f"state dict must hold 't', got keys {sorted(d)}")
        t = d.pop("t")
        t = check_int(t.item() if isinstance(t, np.ndarray) else t, "t", low=0)
        n = len(d) // len(self.state_keys) if self.state_keys else 0
        expected = {f"{key}.{i}" for key in self.state_keys for i in range(n)}
        if set(d) != expected:
            raise ValueError(
                f"state dict must hold 't' and {sorted(expected) or 'no arrays'} "
                f"(keys {self.state_keys}), got {sorted(d)}"
            )
        state = {}
        for key in self.state_keys if n else ():
            state[key] = [check_array(d[f"{key}.{i}"], f"{key}.{i}").copy() for i in range(n)]
        shapes = {key: _shapes(lst) for key, lst in state.items()}
        if len({tuple(s) for s in shapes.values()}) > 1:
            raise ValueError(f"state lists must have equal shapes, got {shapes}")
        self._state, self.t = state, t

    def config(self) -> dict:
        """JSON-able settings; ``make_optimizer(**opt.config())`` rebuilds the optimiser."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Per parameter array p with gradient g and velocity v (zeros at first)::

        v <- mu v - lr g
        p <- p + v

    With ``momentum = 0`` this is plain gradient descent ``p <- p - lr g``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    momentum : float
        mu in [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> opt = SGD(lr=0.1, momentum=0.9)
    >>> opt.step([np.array([1.0])], [np.array([2.0])])   # v = -0.2
    [array([0.8])]
    >>> opt.step([np.array([0.8])], [np.array([2.0])])   # v = 0.9 * -0.2 - 0.2 = -0.38
    [array([0.42])]
    """

    name = "sgd"
    state_keys = ("velocity",)

    def __init__(self, lr=0.1, momentum=0.9):
        super().__init__()
        self.lr = check_real(lr, "lr", low=0, low_open=True)
        self.momentum = check_real(momentum, "momentum", low=0, high=1, high_open=True)

    def _update(self, params, grads, state):
        velocity = [self.momentum * v - self.lr * g for v, g in zip(state["velocity"], grads)]
        return [p + v for p, v in zip(params, velocity)], {"velocity": velocity}

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr, "momentum": self.momentum}


class Adam(_Optimizer):
    """Adam: per-coordinate steps from bias-corrected moment estimates.

    At each step with gradient g (m, v, c1, c2 zeros at first)::

        m  <- beta1 m  + (1 - beta1) g            m_hat = m / c1
        v  <- beta2 v  + (1 - beta2) g^2          v_hat = v / c2
        c1 <- beta1 c1 + (1 - beta1)              (= 1 - beta1^t after t steps)
        c2 <- beta2 c2 + (1 - beta2)              (= 1 - beta2^t)
        p  <- p - lr m_hat / (sqrt(v_hat) + epsilon)

    The bias corrections c1, c2 are kept per coordinate, as the moments of a constant
    gradient 1 (Kingma & Ba's 1 - beta^t, with t the coordinate's own step count). A
    surgery maps them like the moments: an offspring of a split inherits its parent's,
    a brand-new neuron starts at 0, so its first update is lr-sized (lr g / (|g| +
    epsilon)) like a fresh optimiser's, not 2.5-5 times larger as with one global t.

    Parameters
    ----------
    lr : float
        > 0.
    beta1, beta2 : float
        In (0, 1).
    epsilon : float
        > 0, keeps the step finite where v_hat is 0 (named apart from the split step eps).
    eps : float or None
        Deprecated spelling of ``epsilon`` (a DeprecationWarning; it will go).

    References
    ----------
    D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
    arXiv:1412.6980 (Algorithm 1).

    Examples
    --------
    >>> import numpy as np
    >>> opt = Adam(lr=0.1)
    >>> opt.step([np.array([1.0])], [np.array([2.0])])   # m_hat = 2, v_hat = 4
    [array([0.9])]
    """

    name = "adam"
    state_keys = ("m", "v", "c1", "c2")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, eps=None):
        super().__init__()
        if eps is not None:
            warnings.warn("Adam(eps=...) is deprecated; use epsilon=...", DeprecationWarning,
                          stacklevel=2)
            epsilon = eps
        self.lr = check_real(lr, "lr", low=0, low_open=True)
        self.beta1 = check_real(beta1, "beta1", low=0, high=1, low_open=True, high_open=True)
        self.beta2 = check_real(beta2, "beta2", low=0, high=1, low_open=True, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)

    def _update(self, params, grads, state):
        b1, b2 = self.beta1, self.beta2
        m = [b1 * m_k + (1.0 - b1) * g for m_k, g in zip(state["m"], grads)]
        v = [b2 * v_k + (1.0 - b2) * g * g for v_k, g in zip(state["v"], grads)]
        c1 = [b1 * c + (1.0 - b1) for c in state["c1"]]
        c2 = [b2 * c + (1.0 - b2) for c in state["c2"]]
        new = [
            p - self.lr * (m_k / c1_k) / (np.sqrt(v_k / c2_k) + self.epsilon)
            for p, m_k, v_k, c1_k, c2_k in zip(params, m, v, c1, c2)
        ]
        return new, {"m": m, "v": v, "c1": c1, "c2": c2}

    def config(self) -> dict:
        return {
            "name": self.name,
            "lr": self.lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
        }


class LBFGS(_Optimizer):
    """Full-batch L-BFGS on the hand-derived gradient, run to a stationary point.

    ``scipy.optimize.minimize(method="L-BFGS-B")`` without bounds, on the flat parameter
    vector, with the exact loss and gradient of the network (no finite differences). It
    stops when the gradient's 2-norm is at most ``grad_tol`` (the round is *stationary*:
    the parametric local minimum the splitting theory speaks of), or after the round's
    iteration budget, or when the line search can make no more progress. Each call starts
    with an empty curvature memory, so there is no state to carry through a surgery.

    Parameters
    ----------
    grad_tol : float
        > 0, the gradient norm at which training stops.
    memory : int
        >= 1, the number of curvature pairs kept (scipy's ``maxcor``).

    Notes
    -----
    For small problems only: every iteration evaluates the whole training set, at least
    once. :func:`minisplit.train` runs it (``optimizer.step`` is refused).

    References
    ----------
    R. H. Byrd, P. Lu, J. Nocedal, C. Zhu, "A limited memory algorithm for bound
    constrained optimization", SIAM J. Sci. Comput. 16 (1995).
    """

    name = "lbfgs"
    full_batch = True

    def __init__(self, grad_tol=1e-6, memory=10):
        super().__init__()
        self.grad_tol = check_real(grad_tol, "grad_tol", low=0, low_open=True)
        self.memory = check_int(memory, "memory", low=1)

    def step(self, params, grads):
        raise TypeError("LBFGS is a full-batch optimiser: train with minisplit.train, which "
                        "hands it the whole training set")

    def minimize(self, fun_and_grad, x0, max_iter, on_iteration):
        """Run L-BFGS from ``x0``; return ``(x, iterations, stationary)``.

        ``fun_and_grad(x) -> (loss, gradient)`` on flat vectors; ``on_iteration(x, loss,
        grad_norm)`` after each iteration.
        """
        from scipy.optimize import minimize  # imported here: only this optimiser needs it

        last = {}

        def evaluate(x):
            value, grad = fun_and_grad(x)
            last.update(x=x.copy(), norm=float(np.linalg.norm(grad)))
            return value, grad

        state = {"stationary": False}

        def callback(intermediate_result):
            x = intermediate_result.x
            norm = last["norm"] if np.array_equal(last["x"], x) else float(
                np.linalg.norm(fun_and_grad(x)[1])
            )
            on_iteration(x, float(intermediate_result.fun), norm)
            if norm <= self.grad_tol:
                state["stationary"] = True
                raise StopIteration

        evaluate(np.asarray(x0, dtype=np.float64))
        if last["norm"] <= self.grad_tol or max_iter == 0:
            return np.asarray(x0, dtype=np.float64), 0, last["norm"] <= self.grad_tol
        result = minimize(
            evaluate, x0, jac=True, method="L-BFGS-B", callback=callback,
            options={"maxiter": max_iter, "maxcor": self.memory, "gtol": 0.0, "ftol": 0.0,
                     "maxfun": 50 * max_iter + 100},
        )
        self.t += int(result.nit)
        return result.x, int(result.nit), state["stationary"]

    def config(self) -> dict:
        return {"name": self.name, "grad_tol": self.grad_tol, "memory": self.memory}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "lbfgs": LBFGS}


def make_optimizer(name, **kwargs) -> _Optimizer:
    """An optimiser by name: ``"sgd"`` (:class:`SGD`), ``"adam"`` (:class:`Adam`) or
    ``"lbfgs"`` (:class:`LBFGS`, full batch).

    Examples
    --------
    >>> make_optimizer("adam", lr=0.01)
    Adam(lr=0.01, beta1=0.9, beta2=0.999, epsilon=1e-08)
    >>> opt = make_optimizer("sgd", momentum=0.5)
    >>> make_optimizer(**opt.config()).config() == opt.config()
    True
    """
    return OPTIMIZERS[check_choice(name, "name", sorted(OPTIMIZERS))](**kwargs)
