"""Tests of the built-in data sets: shapes, formulas, determinism, splits, digits, errors."""

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minisplit.datasets import (
    DATASETS,
    Dataset,
    blobs,
    digits,
    load,
    moons,
    rbf_teacher,
    shipped,
    spirals,
    teacher_student,
    train_test_split,
)

GENERATORS = {
    "rbf_teacher": rbf_teacher,
    "spirals": spirals,
    "moons": moons,
    "blobs": blobs,
    "teacher_student": teacher_student,
}
UCI_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


# ----------------------------------------------------------------------------- shapes, dtypes


@given(n=st.integers(1, 30), n_centers=st.integers(1, 5), noise=st.floats(0, 3))
@example(n=1, n_centers=1, noise=0.0)
def test_rbf_teacher_shapes_and_range(n, n_centers, noise):
    X, y = rbf_teacher(n=n, n_centers=n_centers, noise=noise, seed=n)
    assert X.shape == (n, 1) and y.shape == (n, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.all((X >= -3) & (X <= 3))


@given(
    n=st.integers(1, 30),
    n_in=st.integers(1, 5),
    width=st.integers(1, 5),
    n_out=st.integers(1, 3),
    noise=st.floats(0, 3),
)
@example(n=1, n_in=1, width=1, n_out=1, noise=0.0)
def test_teacher_student_shapes(n, n_in, width, n_out, noise):
    X, y = teacher_student(n=n, n_in=n_in, teacher_width=width, n_out=n_out, noise=noise)
    assert X.shape == (n, n_in) and y.shape == (n, n_out)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.all(np.isfinite(y))


@given(n_classes=st.integers(2, 6), extra=st.integers(0, 30), noise=st.floats(0, 1))
@example(n_classes=2, extra=0, noise=0.0)
@pytest.mark.parametrize("make", [spirals, blobs])
def test_multiclass_labels_cover_all_classes_evenly(make, n_classes, extra, noise):
    n = n_classes + extra
    if make is spirals:
        X, y = make(n=n, n_classes=n_classes, noise=noise)
    else:
        X, y = make(n=n, n_classes=n_classes, std=noise)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=n_classes)
    assert len(counts) == n_classes and counts.min() >= 1
    assert counts.max() - counts.min() <= 1


@given(n=st.integers(2, 40))
def test_moons_labels(n):
    X, y = moons(n=n)
    assert X.shape == (n, 2) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [(n + 1) // 2, n // 2]


def test_rows_are_not_grouped_by_class():
    _, y = spirals(n=200)
    assert not np.all(np.diff(y) >= 0)


# ----------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("width", [0.5, 0.7, 1.3])
def test_rbf_teacher_matches_formula(width):
    X, y, teacher = rbf_teacher(n=40, n_centers=3, width=width, seed=5, return_teacher=True)
    c, w = teacher["centers"], teacher["weights"]
    assert teacher["width"] == width and c.shape == (3,) and w.shape == (3,)
    assert np.all(np.abs(c) <= 3)
    expected = [
        sum(w[j] * np.exp(-((x - c[j]) ** 2) / (2 * width**2)) for j in range(3)) for x in X[:, 0]
    ]
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-12, atol=1e-14)


def test_rbf_teacher_peak_hand_worked():
    # one neuron of weight w: at x = c the bump is exp(0) = 1, so y = w; one width away it is
    # w * exp(-1/2) = 0.6065... w.
    _, _, teacher = rbf_teacher(n=1, n_centers=1, width=0.8, seed=2, return_teacher=True)
    c, w = teacher["centers"][0], teacher["weights"][0]
    X, y = rbf_teacher(n=1, n_centers=1, width=0.8, seed=2)
    bump = np.exp(-((X[0, 0] - c) ** 2) / (2 * 0.8**2))
    assert y[0, 0] == pytest.approx(w * bump, rel=1e-12)
    assert np.exp(-((0.8) ** 2) / (2 * 0.8**2)) == pytest.approx(0.60653066, rel=1e-8)


def test_teacher_student_matches_formula():
    X, y, t = teacher_student(n=30, n_in=3, teacher_width=5, n_out=2, seed=4, return_teacher=True)
    assert t["W1"].shape == (5, 3) and t["b1"].shape == (5,)
    assert t["W2"].shape == (2, 5) and t["b2"].shape == (2,)
    expected = np.empty((30, 2))
    for i in range(30):
        hidden = [np.tanh(t["W1"][j] @ X[i] + t["b1"][j]) for j in range(5)]
        for k in range(2):
            expected[i, k] = sum(t["W2"][k, j] * hidden[j] for j in range(5)) + t["b2"][k]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [rbf_teacher, teacher_student])
def test_regression_noise_has_requested_std(make):
    X0, y0 = make(n=20000, noise=0.0, seed=9)
    X1, y1 = make(n=20000, noise=0.3, seed=9)
    np.testing.assert_array_equal(X0, X1)
    # sample std of 20000 N(0, 0.3^2) draws is within 0.3 * 4 / sqrt(2 * 20000) = 0.006
    assert np.std(y1 - y0) == pytest.approx(0.3, abs=0.006)


def test_spirals_noiseless_points_lie_on_their_arm():
    X, y = spirals(n=90, n_classes=3, noise=0.0)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert np.all(radius <= 1)
    arm_angle = 2 * np.pi * (y / 3 + radius)
    np.testing.assert_allclose(X[:, 0], radius * np.cos(arm_angle), atol=1e-12)
    np.testing.assert_allclose(X[:, 1], radius * np.sin(arm_angle), atol=1e-12)


def test_moons_noiseless_points_lie_on_their_half_circle():
    X, y = moons(n=51, noise=0.0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, rtol=1e-12)
    assert np.all(upper[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, rtol=1e-12)
    assert np.all(lower[:, 1] <= 0.5)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_blobs_centres_are_five_apart_on_a_circle(n_classes):
    X, y = blobs(n=3 * n_classes, n_classes=n_classes, std=0.0, seed=1)
    centers = np.array([X[y == k][0] for k in range(n_classes)])
    for k in range(n_classes):
        np.testing.assert_allclose(X[y == k], np.broadcast_to(centers[k], X[y == k].shape))
    radius = 2.5 / np.sin(np.pi / n_classes)
    np.testing.assert_allclose(np.hypot(*centers.T), radius, rtol=1e-12)
    gaps = np.linalg.norm(centers - np.roll(centers, -1, axis=0), axis=1)
    np.testing.assert_allclose(gaps, 5.0, rtol=1e-12)


# ----------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_arrays_different_seed_different(name):
    make = GENERATORS[name]
    X1, y1 = make(seed=3)
    X2, y2 = make(seed=3)
    X3, _ = make(seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    X4, y4 = make(seed=np.random.default_rng(3))
    np.testing.assert_array_equal(X1, X4)
    np.testing.assert_array_equal(y1, y4)


@pytest.mark.parametrize("name", DATASETS)
def test_global_numpy_random_state_is_untouched(name):
    # the legacy global state is what a careless implementation would draw from
    np.random.seed(123)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    load(name)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


# ----------------------------------------------------------------------------- splitting


@given(n=st.integers(2, 40), fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**32))
@example(n=2, fraction=0.5, seed=0)
def test_split_partitions_rows(n, fraction, seed):
    n_test = round(fraction * n)
    X = np.arange(3 * n, dtype=np.float64).reshape(n, 3)  # row i is [3i, 3i+1, 3i+2]
    y = np.arange(n)
    if not 0 < n_test < n:
        with pytest.raises(ValueError, match="both parts must be nonempty"):
            train_test_split(X, y, test_fraction=fraction, seed=seed)
        return
    X_train, y_train, X_test, y_test = train_test_split(X, y, test_fraction=fraction, seed=seed)
    assert len(X_test) == len(y_test) == n_test and len(X_train) == len(y_train) == n - n_test
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), np.arange(n))
    np.testing.assert_array_equal(X_train[:, 0], 3 * y_train)  # rows stay paired with labels
    np.testing.assert_array_equal(X_test[:, 0], 3 * y_test)


def test_split_returns_copies_and_leaves_input_alone():
    X, y = moons(n=20)
    X_before, y_before = X.copy(), y.copy()
    parts = train_test_split(X, y, seed=1)
    for part in parts:
        part[...] = -7
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_split_is_seeded():
    X, y = blobs(n=40)
    a, b, c = (train_test_split(X, y, seed=s) for s in (0, 0, 1))
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


# ----------------------------------------------------------------------------- digits


def test_digits_counts_and_range():
    X, y = digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == UCI_CLASS_COUNTS
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # counts 0..16, exactly


def test_digits_images_are_the_same_pixels():
    X, y = digits()
    images, labels = digits(images=True)
    assert images.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), X)
    np.testing.assert_array_equal(labels, y)
    # a '0' has an empty centre and ink left and right of it on the middle row
    zero = images[np.flatnonzero(y == 0)[0], 0]
    assert zero[3:5, 3:5].mean() < zero[3:5, [1, 6]].mean()


def test_digits_each_call_gives_fresh_arrays():
    X, _ = digits()
    X[...] = 5
    assert digits()[0].max() == 1.0


def _write_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.zeros((1797, 64), np.uint8)}, "expected arrays"),
        ({"X": np.zeros((1797, 64)), "y": np.zeros(1797, np.uint8)}, "X must be uint8"),
        ({"X": np.zeros((1796, 64), np.uint8), "y": np.zeros(1797, np.uint8)}, "X must be"),
        ({"X": np.zeros((1797, 64), np.uint8), "y": np.zeros(1797, np.int64)}, "y must be"),
        ({"X": np.full((1797, 64), 17, np.uint8), "y": np.zeros(1797, np.uint8)}, "0..16"),
    ],
)
def test_digits_file_with_wrong_contents_is_reported(tmp_path, arrays, match):
    path = _write_npz(tmp_path / "digits.npz", **arrays)
    with pytest.raises(OSError, match=match):
        shipped._read_digits(path)


def test_digits_file_damaged_is_reported(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(OSError, match="corrupt"):
        shipped._read_digits(garbage)
    X, y = digits()
    whole = _write_npz(tmp_path / "whole.npz", X=(X * 16).astype(np.uint8), y=y.astype(np.uint8))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole.read_bytes()[:1000])
    with pytest.raises(OSError, match="corrupt"):
        shipped._read_digits(truncated)


# ----------------------------------------------------------------------------- load


@pytest.mark.parametrize("name", DATASETS)
def test_load_every_name(name):
    data = load(name)
    assert isinstance(data, Dataset) and data.name == name
    n = {"rbf_teacher": 200, "teacher_student": 500, "digits": 1797, "fashion_mnist": 7000,
         "keywords": 3000}.get(name, 300)
    assert len(data.X_train) + len(data.X_test) == n
    assert len(data.y_train) == len(data.X_train) and len(data.y_test) == len(data.X_test)
    # fashion_mnist and keywords keep their shipped splits: the 1,000 original test images, the
    # 600 clips of the test voices
    assert len(data.X_test) == {"fashion_mnist": 1000, "keywords": 600}.get(name, round(0.25 * n))
    if name in ("rbf_teacher", "teacher_student"):
        assert data.task == "regression" and data.n_classes is None
        assert data.y_train.ndim == 2
    else:
        expected = {"spirals": 2, "moons": 2, "blobs": 3, "digits": 10, "fashion_mnist": 10,
                    "keywords": 12}[name]
        assert data.task == "classification" and data.n_classes == expected
        assert data.y_train.dtype == np.int64
    assert name in repr(data) and "X_train=" in repr(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"


def test_load_passes_options_and_is_reproducible():
    data = load("spirals", seed=2, test_fraction=0.5, n=40, n_classes=4)
    again = load("spirals", seed=2, test_fraction=0.5, n=40, n_classes=4)
    assert data.n_classes == 4 and data.X_train.shape == (20, 2)
    np.testing.assert_array_equal(data.X_test, again.X_test)
    assert not np.array_equal(data.X_test, load("spirals", seed=3, n=40, n_classes=4).X_test)
    assert load("digits", images=True).X_train.shape == (1348, 1, 8, 8)
    assert not np.array_equal(load("digits", seed=0).y_test, load("digits", seed=1).y_test)


def test_load_unknown_name_lists_valid_names():
    with pytest.raises(
        ValueError, match="name must be one of 'rbf_teacher', 'spirals', 'moons', 'blobs'"
    ) as info:
        load("mnist")
    assert "'mnist'" in str(info.value)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: rbf_teacher(n=-3), ValueError, "n must be an integer >= 1, got -3"),
        (lambda: rbf_teacher(n=2.5), TypeError, "n must be an integer >= 1, got 2.5"),
        (lambda: rbf_teacher(n=True), TypeError, "n must be an integer >= 1, got True"),
        (lambda: rbf_teacher(n_centers=0), ValueError, "n_centers must be"),
        (lambda: rbf_teacher(width=0), ValueError, "width must be a finite number > 0"),
        (lambda: rbf_teacher(noise=-0.1), ValueError, "noise must be a finite number >= 0"),
        (lambda: rbf_teacher(noise=np.nan), ValueError, "noise must be"),
        (lambda: rbf_teacher(noise="0.1"), TypeError, "noise must be"),
        (
            lambda: rbf_teacher(seed=-1),
            ValueError,
            "seed must be an integer >= 0 or a np.random.Generator, got -1",
        ),
        (lambda: rbf_teacher(seed=1.5), TypeError, "seed must be"),
        (lambda: teacher_student(n_in=0), ValueError, "n_in must be"),
        (lambda: teacher_student(teacher_width=0), ValueError, "teacher_width must be"),
        (lambda: teacher_student(n_out=0), ValueError, "n_out must be"),
        (lambda: spirals(n_classes=1), ValueError, "n_classes must be an integer >= 2"),
        (lambda: spirals(n=2, n_classes=3), ValueError, "n must be an integer >= 3, got 2"),
        (lambda: moons(n=1), ValueError, "n must be an integer >= 2, got 1"),
        (lambda: moons(noise=np.inf), ValueError, "noise must be"),
        (lambda: blobs(std=-1), ValueError, "std must be"),
        (lambda: blobs(n_classes=2.0), TypeError, "n_classes must be"),
        (lambda: digits(images=1), TypeError, "images must be True or False"),
        (lambda: train_test_split(np.zeros((4, 2)), np.zeros(5)), ValueError, "same number"),
        (lambda: train_test_split(np.float64(1), np.zeros(1)), ValueError, "one row per"),
        (lambda: train_test_split(np.zeros(4), np.zeros(4), 0.0), ValueError, "test_fraction"),
        (
            lambda: train_test_split(np.zeros(4), np.zeros(4), 1.0),
            ValueError,
            "test_fraction must be .* < 1, got 1.0",
        ),
        (lambda: train_test_split(np.zeros(1), np.zeros(1)), ValueError, "nonempty"),
        (lambda: load("moons", n=-3), ValueError, "n must be an integer >= 2, got -3"),
        (
            lambda: load("moons", test_fraction=2),
            ValueError,
            "test_fraction must be .* < 1, got 2.0",
        ),
        (lambda: load("rbf_teacher", return_teacher=True), TypeError, "return_teacher"),
        (lambda: load("digits", seed="a"), TypeError, "seed must be"),
    ],
)
def test_bad_input_says_what_was_expected_and_what_came(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_integers_and_floats_are_accepted():
    X, y = spirals(n=np.int64(10), n_classes=np.int32(2), noise=np.float32(0.5), seed=np.uint8(1))
    assert X.shape == (10, 2) and np.bincount(y).tolist() == [5, 5]
