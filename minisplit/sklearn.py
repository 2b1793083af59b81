"""scikit-learn estimators that grow a network by splitting neurons (docs/sklearn.md).

:class:`SplittingClassifier` and :class:`SplittingRegressor` wrap :func:`minisplit.grow`:
``fit(X, y)`` builds a small MLP, ``mlp([n_features, start, ..., n_outputs])``, and grows it
with a :class:`minisplit.GrowthConfig` made from the estimator's parameters. Every field of
GrowthConfig except ``seed`` is a constructor parameter of the same name, whose default is
*read from* GrowthConfig's dataclass fields (``_DEFAULTS``), so the two cannot drift apart;
``seed`` is replaced by scikit-learn's ``random_state`` (:func:`_seed`).

scikit-learn is an optional dependency: ``import minisplit`` never imports this module, and
importing it without scikit-learn raises an ImportError naming the extra to install.
"""

from __future__ import annotations

import numbers
from dataclasses import MISSING, fields

import numpy as np
import scipy.special

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, check_random_state
except ImportError as err:
    raise ImportError(
        "minisplit.sklearn needs scikit-learn: pip install minisplit[sklearn]"
    ) from err
try:
    from sklearn.utils.validation import validate_data
except ImportError as err:  # scikit-learn < 1.6 has only the private BaseEstimator method
    raise ImportError(
        "minisplit.sklearn needs scikit-learn >= 1.6 (sklearn.utils.validation.validate_data): "
        'pip install -U "scikit-learn>=1.6"'
    ) from err

from minisplit import GrowthConfig, grow, mlp
from minisplit._checks import check_int, check_type

#: The settings that become GrowthConfig fields; ``seed`` comes from ``random_state``.
_CONFIG_FIELDS = tuple(f for f in fields(GrowthConfig) if f.name != "seed")

#: Each setting's default, read from GrowthConfig. A field built by a factory (its default
#: is mutable: ``optimizer_options``, an empty dict) defaults to None here, as scikit-learn
#: allows only immutable defaults; ``fit`` turns None into the factory's value.
_DEFAULTS = {f.name: None if f.default is MISSING else f.default for f in _CONFIG_FIELDS}

#: Seeds drawn from a RandomState or Generator lie in [0, _SEED_HIGH) (scikit-learn's range).
_SEED_HIGH = np.iinfo(np.int32).max


def _seed(random_state) -> int:
    """The int seed of one fit, from a scikit-learn ``random_state``.

    An integer >= 0 is the seed itself. None (NumPy's global RandomState, scikit-learn's
    convention) or a RandomState: ``check_random_state(random_state).randint(2**31 - 1)``.
    A Generator: ``random_state.integers(2**31 - 1)``. Drawing consumes from the state, so
    successive fits with one RandomState or Generator differ.
    """
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(_SEED_HIGH))
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return int(check_random_state(random_state).randint(_SEED_HIGH))
    what = "None, an integer >= 0, a np.random.RandomState or a np.random.Generator"
    check_type(random_state, "random_state", numbers.Integral, what)
    return check_int(random_state, "random_state", low=0)  # refuses bools and negatives


class _SplittingEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, fit, the forward pass."""

    _loss = None  # "cross_entropy" or "mse", set by each subclass

    def __init__(
        self,
        *,
        start=2,
        hidden_layers=1,
        activation="tanh",
        strategy=_DEFAULTS["strategy"],
        selection=_DEFAULTS["selection"],
        threshold=_DEFAULTS["threshold"],
        k=_DEFAULTS["k"],
        fraction=_DEFAULTS["fraction"],
        knapsack_flops=_DEFAULTS["knapsack_flops"],
        eps=_DEFAULTS["eps"],
        eps_grid=_DEFAULTS["eps_grid"],
        signed=_DEFAULTS["signed"],
        alpha=_DEFAULTS["alpha"],
        budget_kind=_DEFAULTS["budget_kind"],
        budget=_DEFAULTS["budget"],
        max_rounds=_DEFAULTS["max_rounds"],
        steps_per_round=_DEFAULTS["steps_per_round"],
        plateau_window=_DEFAULTS["plateau_window"],
        plateau_rel_tol=_DEFAULTS["plateau_rel_tol"],
        optimizer=_DEFAULTS["optimizer"],
        lr=_DEFAULTS["lr"],
        optimizer_options=_DEFAULTS["optimizer_options"],
        surgery_state=_DEFAULTS["surgery_state"],
        batch_size=_DEFAULTS["batch_size"],
        early_steps=_DEFAULTS["early_steps"],
        solver=_DEFAULTS["solver"],
        relu_surrogate=_DEFAULTS["relu_surrogate"],
        net2net_noise=_DEFAULTS["net2net_noise"],
        gradmax_scale=_DEFAULTS["gradmax_scale"],
        random_state=None,
    ):
        # stored unchanged (scikit-learn's convention); fit validates
        self.start, self.hidden_layers, self.activation = start, hidden_layers, activation
        self.strategy, self.selection = strategy, selection
        self.threshold, self.k, self.fraction = threshold, k, fraction
        self.knapsack_flops = knapsack_flops
        self.eps, self.eps_grid = eps, eps_grid
        self.signed, self.alpha = signed, alpha
        self.budget_kind, self.budget = budget_kind, budget
        self.max_rounds, self.steps_per_round = max_rounds, steps_per_round
        self.plateau_window, self.plateau_rel_tol = plateau_window, plateau_rel_tol
        self.optimizer, self.lr, self.optimizer_options = optimizer, lr, optimizer_options
        self.surgery_state, self.batch_size = surgery_state, batch_size
        self.early_steps = early_steps
        self.solver, self.relu_surrogate = solver, relu_surrogate
        self.net2net_noise, self.gradmax_scale = net2net_noise, gradmax_scale
        self.random_state = random_state

    def _config(self, seed: int) -> GrowthConfig:
        """The GrowthConfig of this fit (GrowthConfig validates every setting)."""
        settings = {}
        for f in _CONFIG_FIELDS:
            value = getattr(self, f.name)
            if value is None and f.default is MISSING:  # the factory's default, e.g. {}
                value = f.default_factory()
            settings[f.name] = value
        return GrowthConfig(**settings, seed=seed)

    def _grow(self, X, targets, n_outputs):
        """Build the starting MLP, grow it on (X, targets) and set the fitted attributes."""
        start = check_int(self.start, "start", low=1)
        hidden_layers = check_int(self.hidden_layers, "hidden_layers", low=1)
        seed = _seed(self.random_state)
        config = self._config(seed)
        sizes = [X.shape[1], *[start] * hidden_layers, n_outputs]
        net = mlp(sizes, activation=self.activation, loss=self._loss, seed=seed)
        result = grow(net, X, targets, config)
        self.net_, self.history_ = result.net, result.history
        self.n_neurons_ = result.history.rounds[-1].n_neurons
        return self

    def _forward(self, X) -> np.ndarray:
        """The grown network's output F (N, k) on X (checked against what fit saw)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.net_.forward(X)


class SplittingClassifier(ClassifierMixin, _SplittingEstimator):
    """A classifier whose MLP is grown by splitting neurons (softmax cross-entropy).

    ``fit`` encodes the labels as 0 .. n_classes - 1 (``classes_``, sorted), builds
    ``mlp([n_features, start] + [start] * (hidden_layers - 1) + [n_classes], activation,
    loss="cross_entropy")`` and grows it with :func:`minisplit.grow`; ``predict`` is the
    class of the largest logit, ``predict_proba`` the softmax of the logits.

    Parameters
    ----------
    start : int
        Neurons in each hidden layer of the starting network (>= 1).
    hidden_layers : int
        Number of hidden layers (>= 1); every one of them is grown.
    activation : str
        Hidden activation (:data:`minisplit.ACTIVATIONS`).
    strategy, selection, threshold, k, fraction, knapsack_flops, eps, eps_grid, signed, \
alpha, budget_kind, budget, max_rounds, steps_per_round, plateau_window, plateau_rel_tol, \
optimizer, lr, optimizer_options, surgery_state, batch_size, early_steps, solver, \
relu_surrogate, net2net_noise, gradmax_scale
        The fields of :class:`minisplit.GrowthConfig`, same names, meanings and defaults;
        ``optimizer_options=None`` means ``{}``.
    random_state : None, int, RandomState or Generator
        Turned into the run's seed once per fit: an int >= 0 is the seed itself; None
        (NumPy's global RandomState) or a RandomState gives
        ``check_random_state(random_state).randint(2**31 - 1)``, a Generator
        ``random_state.integers(2**31 - 1)``. The seed initialises the starting network
        (``mlp(..., seed=seed)``) and seeds the growth run (``GrowthConfig(seed=seed)``).

    Attributes
    ----------
    net_ : minisplit.Network
        The grown network (outputs: one logit per class).
    history_ : minisplit.History
        Every round of the run (docs/growth.md, "History fields").
    n_neurons_ : int
        Neurons in the hidden layers of ``net_``.
    classes_ : ndarray (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Number of features seen by fit.

    Examples
    --------
    >>> from minisplit.sklearn import SplittingClassifier
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"]
    >>> clf = SplittingClassifier(budget=4, steps_per_round=200, random_state=0).fit(X, y)
    >>> clf.predict([[0.2], [2.8]]).tolist(), clf.classes_.tolist()
    (['no', 'yes'], ['no', 'yes'])
    """

    _loss = "cross_entropy"

    def fit(self, X, y):
        """Grow the network on ``X`` (N, d) and labels ``y`` (N,); returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        return self._grow(X, labels, self.classes_.size)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes): the softmax of the logits, columns ``classes_``."""
        return scipy.special.softmax(self._forward(X), axis=1)  # (N, n_classes)

    def predict(self, X) -> np.ndarray:
        """The label (N,) of the largest logit."""
        F = self._forward(X)  # (N, n_classes)
        return self.classes_[np.argmax(F, axis=1)]


class SplittingRegressor(RegressorMixin, _SplittingEstimator):
    """A regressor whose MLP is grown by splitting neurons (mean squared error).

    ``fit`` builds ``mlp([n_features, start] + [start] * (hidden_layers - 1) + [k],
    activation, loss="mse")``, k the number of targets, and grows it with
    :func:`minisplit.grow`. ``y`` may be (N,) or (N, k); ``predict`` returns the same shape.

    Parameters
    ----------
    start, hidden_layers, activation, strategy, selection, threshold, k, fraction, \
knapsack_flops, eps, eps_grid, signed, alpha, budget_kind, budget, max_rounds, \
steps_per_round, plateau_window, plateau_rel_tol, optimizer, lr, optimizer_options, \
surgery_state, batch_size, early_steps, solver, relu_surrogate, net2net_noise, \
gradmax_scale, random_state
        As for :class:`SplittingClassifier`.

    Attributes
    ----------
    net_ : minisplit.Network
        The grown network (one output per target).
    history_ : minisplit.History
        Every round of the run.
    n_neurons_ : int
        Neurons in the hidden layers of ``net_``.
    n_features_in_ : int
        Number of features seen by fit.

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit.sklearn import SplittingRegressor
    >>> X = np.linspace(-2, 2, 20).reshape(-1, 1)
    >>> reg = SplittingRegressor(budget=3, steps_per_round=200, random_state=0)
    >>> reg.fit(X, np.sin(2 * X).ravel()).predict(X).shape
    (20,)
    >>> reg.n_neurons_, reg.history_.meta["stop_reason"]
    (3, 'budget')
    """

    _loss = "mse"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Grow the network on ``X`` (N, d) and targets ``y`` (N,) or (N, k); returns self."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._y_ndim = y.ndim
        targets = y.reshape(y.shape[0], -1)  # (N, k)
        return self._grow(X, targets, targets.shape[1])

    def predict(self, X) -> np.ndarray:
        """The predicted targets, (N,) or (N, k) like the ``y`` fit saw."""
        F = self._forward(X)  # (N, k)
        return F.ravel() if self._y_ndim == 1 else F
