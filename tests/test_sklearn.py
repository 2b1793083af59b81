"""The scikit-learn estimators (minisplit.sklearn, docs/sklearn.md).

scikit-learn's own estimator checks run on both estimators, none marked as an expected
failure. Two of them depend on the environment, not on the estimators:

- ``check_array_api_input`` raises SkipTest unless SCIPY_ARRAY_API is set; it is set for
  that check only (below, ``test_estimator_checks``);
- ``check_classifier_data_not_an_array`` and ``check_regressor_data_not_an_array`` first
  compare fits on an array-like object with fits on arrays, then do the same with pandas
  objects; pandas is in the test extra so both halves run (without it, scikit-learn raises
  SkipTest for the pandas half and pytest reports the check as skipped with that reason).
"""

import inspect
import subprocess
import sys
from dataclasses import MISSING, fields

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_random_state

import minisplit as ms
from minisplit.sklearn import SplittingClassifier, SplittingRegressor

#: Small, fast growth runs: a few rounds of 100 updates, at most 4 hidden neurons.
FAST = {"budget": 4, "max_rounds": 2, "steps_per_round": 100, "lr": 0.05}

#: The constructor parameters that are not GrowthConfig fields.
OWN_PARAMETERS = {"start", "hidden_layers", "activation", "random_state"}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=60, centers=3, n_features=2, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def wave():
    X = np.linspace(-2, 2, 40).reshape(-1, 1)  # (40, 1)
    return X, np.sin(2 * X).ravel()


# ---- scikit-learn's estimator checks -------------------------------------------------------


@parametrize_with_checks([SplittingClassifier(**FAST, random_state=0),
                          SplittingRegressor(**FAST, random_state=0)])
def test_estimator_checks(estimator, check, monkeypatch):
    if check.func.__name__ == "check_array_api_input":
        # The check skips itself unless the variable is set. With NumPy inputs (the only
        # namespace it is run with here, the estimators declaring no array API support) it
        # is only read, by scikit-learn's _check_array_api_dispatch; SciPy's own array API
        # mode, fixed when SciPy was imported, plays no part for NumPy arrays.
        monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# ---- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize("Estimator", [SplittingClassifier, SplittingRegressor])
def test_every_config_field_but_seed_is_a_parameter_with_its_default(Estimator):
    signature = inspect.signature(Estimator.__init__).parameters
    config_names = set()
    for f in fields(ms.GrowthConfig):
        if f.name == "seed":
            assert "seed" not in signature  # random_state stands for it
            continue
        config_names.add(f.name)
        assert f.name in signature, f.name
        default = signature[f.name].default
        if f.default is MISSING:  # a factory's mutable default: None, made by fit
            assert default is None and f.default_factory() == {}, f.name
        else:
            assert default == f.default and type(default) is type(f.default), f.name
    assert set(signature) - {"self"} == config_names | OWN_PARAMETERS


def test_fit_passes_every_setting_to_the_growth_run(wave):
    settings = {  # every field away from its default
        "strategy": "random_split", "selection": "k", "threshold": -0.5, "k": 2,
        "fraction": 0.4, "knapsack_flops": 1000.0, "eps": 0.05, "eps_grid": (0.01, 0.2),
        "signed": True, "alpha": 0.5, "budget_kind": "params", "budget": 20.0,
        "max_rounds": 2, "steps_per_round": 30, "plateau_window": 7, "plateau_rel_tol": 0.02,
        "optimizer": "sgd", "lr": 0.03, "optimizer_options": {"momentum": 0.8},
        "surgery_state": "reset", "batch_size": 16, "early_steps": 3, "solver": "matrix_free",
        "relu_surrogate": 0.25, "net2net_noise": 0.02, "gradmax_scale": 0.04,
    }
    defaults = {f.name: f.default for f in fields(ms.GrowthConfig) if f.name != "seed"}
    assert set(settings) == set(defaults)
    assert all(settings[name] != defaults[name] for name in settings)  # MISSING: a factory's
    reg = SplittingRegressor(**settings, activation="relu", random_state=5).fit(*wave)
    expected = ms.GrowthConfig(**settings, seed=5).to_dict()
    assert reg.history_.meta["config"] == expected
    assert reg.get_params()["optimizer_options"] is settings["optimizer_options"]  # unchanged


def test_default_optimizer_options_become_an_empty_dict(wave):
    reg = SplittingRegressor(**FAST, random_state=0).fit(*wave)
    assert reg.optimizer_options is None
    assert reg.history_.meta["config"]["optimizer_options"] == {}


def test_bad_settings_are_refused_by_fit_not_by_the_constructor(wave):
    reg = SplittingRegressor(eps=-1.0)  # stored unchanged
    assert reg.eps == -1.0
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got -1.0"):
        reg.fit(*wave)
    with pytest.raises(ValueError, match="start must be an integer >= 1, got 0"):
        SplittingRegressor(start=0).fit(*wave)
    with pytest.raises(TypeError, match="hidden_layers must be an integer >= 1, got 1.5"):
        SplittingRegressor(hidden_layers=1.5).fit(*wave)


# ---- random_state --------------------------------------------------------------------------


def test_same_random_state_gives_the_same_predictions_bit_for_bit(blobs, wave):
    X, y = blobs
    first = SplittingClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    again = SplittingClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    other = SplittingClassifier(**FAST, random_state=4).fit(X, y).predict_proba(X)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    rs = [np.random.RandomState(7), np.random.RandomState(7)]
    fits = [SplittingRegressor(**FAST, random_state=r).fit(*wave).predict(wave[0]) for r in rs]
    assert np.array_equal(*fits)


def test_an_integer_random_state_is_the_seed_of_the_network_and_the_run(wave):
    X, y = wave
    reg = SplittingRegressor(**FAST, start=2, random_state=3).fit(X, y)
    config = ms.GrowthConfig(**FAST, seed=3)
    result = ms.grow(ms.mlp([1, 2, 1], activation="tanh", seed=3), X, y.reshape(-1, 1), config)
    assert all(np.array_equal(a, b) for a, b in zip(reg.net_.params, result.net.params))


def test_other_random_states_draw_the_seed(wave):
    high = 2**31 - 1
    reg = SplittingRegressor(**FAST, random_state=np.random.RandomState(0))
    assert reg.fit(*wave).history_.meta["config"]["seed"] == np.random.RandomState(0).randint(high)
    reg = SplittingRegressor(**FAST, random_state=np.random.default_rng(0))
    assert reg.fit(*wave).history_.meta["config"]["seed"] == np.random.default_rng(0).integers(high)
    shadow = np.random.RandomState()  # a copy of the state None stands for (NumPy's global)
    shadow.set_state(check_random_state(None).get_state())
    reg = SplittingRegressor(**FAST, random_state=None).fit(*wave)
    assert reg.history_.meta["config"]["seed"] == shadow.randint(high)
    state = np.random.RandomState(0)  # one RandomState, consumed: two fits, two seeds
    seeds = {SplittingRegressor(**FAST, random_state=state).fit(*wave)
             .history_.meta["config"]["seed"] for _ in range(2)}
    assert len(seeds) == 2


@pytest.mark.parametrize("random_state, error, message", [
    (-1, ValueError, "random_state must be an integer >= 0, got -1"),
    (True, TypeError, "random_state must be an integer >= 0, got True of type bool"),
    ("0", TypeError, "random_state must be None, an integer >= 0, a np.random.RandomState "
                     "or a np.random.Generator, got '0' of type str"),
])
def test_bad_random_states_are_refused(wave, random_state, error, message):
    with pytest.raises(error, match=message):
        SplittingRegressor(**FAST, random_state=random_state).fit(*wave)


# ---- fitted attributes, labels and shapes --------------------------------------------------


def test_fitted_attributes(blobs):
    X, y = blobs
    settings = {**FAST, "budget": 6}
    clf = SplittingClassifier(**settings, hidden_layers=2, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 2
    assert clf.classes_.tolist() == [0, 1, 2]
    assert [obj.W.shape[0] for obj in clf.net_.layers[:-1]] != [2, 2]  # it grew
    widths = sum(obj.W.shape[0] for obj in clf.net_.layers[:-1])
    assert clf.n_neurons_ == widths == clf.history_.rounds[-1].n_neurons <= settings["budget"]
    assert clf.net_.layers[-1].W.shape[0] == 3  # one logit per class
    P = clf.predict_proba(X)  # (60, 3)
    assert np.allclose(P.sum(axis=1), 1.0)
    assert np.array_equal(clf.predict(X), clf.classes_[np.argmax(P, axis=1)])


@pytest.mark.parametrize("names", [
    np.array(["ant", "bee", "cat"]),   # strings
    np.array([-5, 7, 10]),             # non-contiguous integers
])
def test_arbitrary_labels_are_encoded_in_sorted_order(blobs, names):
    X, y = blobs
    plain = SplittingClassifier(**FAST, random_state=0).fit(X, y)
    named = SplittingClassifier(**FAST, random_state=0).fit(X, names[y])
    assert np.array_equal(named.classes_, names)
    # names[i] is class i in sorted order, so both fits grow the very same network
    assert np.array_equal(named.predict_proba(X), plain.predict_proba(X))
    assert np.array_equal(named.predict(X), names[plain.predict(X)])
    assert named.score(X, names[y]) == plain.score(X, y) > 0.9


def test_regressor_predicts_the_shape_of_y(wave):
    X, y = wave
    flat = SplittingRegressor(**FAST, random_state=0).fit(X, y)
    column = SplittingRegressor(**FAST, random_state=0).fit(X, y[:, None])
    two = SplittingRegressor(**FAST, random_state=0).fit(X, np.column_stack([y, -y]))
    assert flat.predict(X).shape == (40,)
    assert column.predict(X).shape == (40, 1)
    assert two.predict(X).shape == (40, 2)
    assert np.array_equal(flat.predict(X), column.predict(X).ravel())
    assert flat.score(X, y) > 0.9


# ---- composition with scikit-learn ---------------------------------------------------------


def test_in_a_pipeline_with_a_scaler(blobs):
    X, y = blobs
    X = 10.0 * X + 3.0  # (60, 2), far from unit scale
    pipe = make_pipeline(StandardScaler(), SplittingClassifier(**FAST, random_state=0))
    pipe.fit(X, y)
    scaled = StandardScaler().fit_transform(X)
    alone = SplittingClassifier(**FAST, random_state=0).fit(scaled, y)
    assert np.array_equal(pipe.predict_proba(X), alone.predict_proba(scaled))
    assert pipe.score(X, y) > 0.9


def test_in_a_grid_search_over_the_budget(wave):
    search = GridSearchCV(SplittingRegressor(**FAST, random_state=0),
                          {"budget": [2, 4]}, cv=2)
    search.fit(*wave)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    assert best.budget == search.best_params_["budget"]
    assert best.n_neurons_ <= best.budget


# ---- scikit-learn stays optional -----------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_minisplit_does_not_import_sklearn():
    result = _run("import sys, minisplit\n"
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_sklearn_the_import_error_says_what_to_install():
    # a None entry in sys.modules makes ``import sklearn`` fail as if it were not installed
    result = _run("import sys\nsys.modules['sklearn'] = None\nimport minisplit.sklearn")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install minisplit[sklearn]" in result.stderr
