"""Tests of the image data: the shipped Fashion-MNIST subset, its build script, load_cifar10."""

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from minisplit.datasets import (
    FASHION_MNIST_CLASSES,
    Dataset,
    cifar10,
    fashion_mnist,
    load,
    load_cifar10,
    shipped,
)

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _import_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_fashion_mnist", ROOT / "tools" / "build_fashion_mnist.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_script = _import_build_script()


# ----------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_shapes_balance_and_scaling():
    X_train, y_train, X_test, y_test = fashion_mnist()
    assert X_train.shape == (6000, 196) and X_test.shape == (1000, 196)
    assert X_train.dtype == X_test.dtype == np.float64
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [600] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    assert X_train.min() == 0.0 and X_train.max() == 1.0 and X_test.min() >= 0.0
    np.testing.assert_array_equal(X_train * 255, np.round(X_train * 255))  # bytes / 255


def test_fashion_mnist_images_are_row_major_nchw():
    X, y, _, _ = fashion_mnist()
    images, labels, _, _ = fashion_mnist(images=True)
    assert images.shape == (6000, 1, 14, 14)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(images[:, 0, 3, 5], X[:, 14 * 3 + 5])  # row 3, column 5
    # trousers, on average: a waist across the top, two legs with a gap between them below;
    # a transposed image would put the gap in a row instead
    trouser = images[y == FASHION_MNIST_CLASSES.index("Trouser"), 0].mean(axis=0)  # (14, 14)
    legs, gap = trouser[9:13, [5, 8]].mean(), trouser[9:13, 7].mean()
    assert gap < 0.5 * legs and trouser[0:3, 7].mean() > 0.5


def test_fashion_mnist_class_names():
    assert len(FASHION_MNIST_CLASSES) == 10 and len(set(FASHION_MNIST_CLASSES)) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert load("fashion_mnist").class_names == FASHION_MNIST_CLASSES
    assert load("digits").class_names is None


def _rows(X):
    return sorted(row.tobytes() for row in X)


def test_load_fashion_mnist_keeps_the_original_split_and_shuffles_rows():
    X_train, y_train, X_test, y_test = fashion_mnist()
    data = load("fashion_mnist", seed=3)
    assert isinstance(data, Dataset) and data.name == "fashion_mnist"
    assert data.task == "classification" and data.n_classes == 10
    # the same images in each part (the test part is the shipped test images), new order
    assert _rows(data.X_test) == _rows(X_test) and _rows(data.X_train) == _rows(X_train)
    assert not np.array_equal(data.X_test, X_test)
    # labels stay with their images: each row of X_test has one label in the stored file
    label_of = {row.tobytes(): label for row, label in zip(X_test, y_test)}
    assert [label_of[row.tobytes()] for row in data.X_test] == data.y_test.tolist()
    again, other = load("fashion_mnist", seed=3), load("fashion_mnist", seed=4)
    np.testing.assert_array_equal(data.X_train, again.X_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(data.y_train, other.y_train)
    assert load("fashion_mnist", images=True, test_fraction=None).X_test.shape == (1000, 1, 14, 14)


@pytest.mark.parametrize("test_fraction", [0.25, 0.5, 2])
def test_load_fashion_mnist_refuses_a_test_fraction_it_would_ignore(test_fraction):
    with pytest.raises(
        ValueError,
        match=rf"test_fraction must be None for 'fashion_mnist', whose test part is fixed "
        rf"\(the original test images\), got {test_fraction}",
    ):
        load("fashion_mnist", test_fraction=test_fraction)


def test_fashion_mnist_bad_input():
    with pytest.raises(TypeError, match="images must be True or False, got 1"):
        fashion_mnist(images=1)
    with pytest.raises(TypeError, match="seed must be"):
        load("fashion_mnist", seed=1.5)


def _shipped():
    with np.load(shipped._FASHION_PATH, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a.pop("test_index"), "expected arrays"),
        (lambda a: a.update(X_train=a["X_train"].astype(np.float64)), "X_train must be uint8"),
        (lambda a: a.update(X_test=a["X_test"][:999]), r"X_test must be uint8 \(1000, 14, 14\)"),
        (lambda a: a.update(y_train=a["y_train"].astype(np.int64)), "y_train must be uint8"),
        (lambda a: a.update(y_test=np.full(1000, 10, np.uint8)), "y_test must hold labels 0..9"),
    ],
)
def test_fashion_mnist_file_with_wrong_contents_is_reported(tmp_path, change, match):
    arrays = _shipped()
    change(arrays)
    path = tmp_path / "fashion_mnist.npz"
    np.savez_compressed(path, **arrays)
    with pytest.raises(OSError, match=f"corrupt or incomplete .*{match}"):
        shipped._read_fashion_mnist(path)


def test_fashion_mnist_file_damaged_is_reported(tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(shipped._FASHION_PATH.read_bytes()[:5000])
    with pytest.raises(OSError, match="truncated.npz is corrupt or incomplete"):
        shipped._read_fashion_mnist(truncated)


# ----------------------------------------------------------------------------- build script


def test_mean_pool_rounds_the_mean_of_each_block_half_up():
    image = np.array(
        [[1, 2, 0, 0],
         [3, 4, 0, 1],
         [255, 255, 9, 9],
         [255, 255, 9, 10]], dtype=np.uint8,
    )[None]  # (1, 4, 4)
    pooled = build_script.mean_pool(image)
    # (1+2+3+4)/4 = 2.5 -> 3;  1/4 -> 0;  255 * 4 / 4 = 255 (no uint8 overflow);  37/4 = 9.25 -> 9
    np.testing.assert_array_equal(pooled, [[[3, 0], [255, 9]]])
    assert pooled.dtype == np.uint8


def _write_idx(path, array):
    magic = 2048 + array.ndim
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def test_build_draws_a_balanced_sorted_subset_from_each_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 5)[rng.permutation(50)]  # 5 images of each class
    images = rng.integers(0, 256, size=(50, 4, 4))
    images_file = _write_idx(tmp_path / "images.gz", images)
    labels_file = _write_idx(tmp_path / "labels.gz", labels)
    X = build_script.read_idx(images_file, build_script.IMAGES_MAGIC)
    y = build_script.read_idx(labels_file, build_script.LABELS_MAGIC)
    np.testing.assert_array_equal(X, images)
    arrays = build_script.build(X, y, X[:30], y[:30], seed=1, train_per_class=3,
                                test_per_class=1)
    train = arrays["train_index"]
    assert np.all(np.diff(train) > 0) and np.bincount(y[train]).tolist() == [3] * 10
    np.testing.assert_array_equal(arrays["y_train"], y[train])
    np.testing.assert_array_equal(arrays["X_train"], build_script.mean_pool(X[train]))
    assert np.all(arrays["test_index"] < 30)  # test images come from the test file only
    again = build_script.build(X, y, X[:30], y[:30], seed=1, train_per_class=3, test_per_class=1)
    np.testing.assert_array_equal(again["train_index"], train)


def test_read_idx_refuses_a_wrong_magic_number(tmp_path):
    labels_file = _write_idx(tmp_path / "labels.gz", np.zeros(4))
    with pytest.raises(ValueError, match="must start with idx magic number 2051, got 2049"):
        build_script.read_idx(labels_file, build_script.IMAGES_MAGIC)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_shipped_file_is_what_the_build_script_makes(tmp_path):
    out = tmp_path / "rebuilt.npz"
    build_script.main(["--out", str(out), "--source", str(DEBIAN_FASHION)])
    rebuilt, shipped = np.load(out, allow_pickle=False), _shipped()
    assert sorted(rebuilt.files) == sorted(shipped)
    for name in shipped:
        np.testing.assert_array_equal(rebuilt[name], shipped[name])
    originals = build_script.read_idx(DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz", 2049)
    np.testing.assert_array_equal(originals[shipped["test_index"]], shipped["y_test"])


# ----------------------------------------------------------------------------- CIFAR-10

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]
RECORDS = 3  # records per fixture file; the real files have 10,000


def _write_cifar10(folder, records=RECORDS, seed=0):
    """A folder in CIFAR-10's binary format: labels (6, records), pixels (6, records, 3072)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    labels = rng.integers(0, 10, size=(6, records), dtype=np.uint8)
    pixels = rng.integers(0, 256, size=(6, records, 3072), dtype=np.uint8)
    for k, name in enumerate([*TRAIN_FILES, "test_batch.bin"]):
        records_bytes = np.concatenate([labels[k][:, None], pixels[k]], axis=1)  # (records, 3073)
        (folder / name).write_bytes(records_bytes.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES) + "\n\n")
    return labels, pixels


@pytest.fixture
def small_records(monkeypatch):
    monkeypatch.setattr(cifar10, "_CIFAR10_RECORDS", RECORDS)


def test_cifar10_reads_every_record_in_file_order(tmp_path, small_records):
    labels, pixels = _write_cifar10(tmp_path / "bin")
    data = load_cifar10(tmp_path / "bin")
    assert isinstance(data, Dataset) and data.name == "cifar10" and data.n_classes == 10
    assert data.task == "classification" and data.class_names == tuple(CIFAR_NAMES)
    assert data.X_train.shape == (15, 3, 32, 32) and data.X_test.shape == (3, 3, 32, 32)
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, labels[:5].ravel())  # batch 1 first, then 2...
    np.testing.assert_array_equal(data.y_test, labels[5])
    # x = byte / 255 exactly, each record's 3,072 bytes in NCHW order
    np.testing.assert_array_equal(data.X_train.reshape(15, 3072), pixels[:5].reshape(15, 3072)
                                  / 255.0)
    np.testing.assert_array_equal(data.X_test.reshape(3, 3072), pixels[5] / 255.0)


def test_cifar10_red_plane_is_channel_0_row_major(tmp_path, small_records):
    _write_cifar10(tmp_path / "bin")
    rows, columns = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")  # (32, 32) each
    record = np.concatenate([[7], rows.ravel(), 100 + columns.ravel(), np.full(1024, 255)])
    path = tmp_path / "bin" / "data_batch_1.bin"
    path.write_bytes(record.astype(np.uint8).tobytes() + path.read_bytes()[3073:])
    image = load_cifar10(str(tmp_path / "bin")).X_train[0]  # (3, 32, 32)
    assert image[0, 5, 2] == 5 / 255  # R byte 32*5 + 2 holds the row, 5
    np.testing.assert_array_equal(image[0], rows / 255)  # red: the row index, row-major
    np.testing.assert_array_equal(image[1], (100 + columns) / 255)  # green: 100 + the column
    np.testing.assert_array_equal(image[2], 1.0)  # blue: 255 everywhere
    assert load_cifar10(tmp_path / "bin").y_train[0] == 7


def test_cifar10_reads_only_the_first_records_asked_for(tmp_path, small_records):
    labels, pixels = _write_cifar10(tmp_path / "bin")
    data = load_cifar10(tmp_path / "bin", n_train=4, n_test=2)
    assert data.X_train.shape == (4, 3, 32, 32) and data.X_test.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(data.y_train, [*labels[0], labels[1, 0]])  # 3 + 1 records
    np.testing.assert_array_equal(data.X_train[3].ravel(), pixels[1, 0] / 255.0)
    np.testing.assert_array_equal(data.y_test, labels[5, :2])


def _truncate(folder, name, n_bytes):
    (folder / name).write_bytes((folder / name).read_bytes()[:n_bytes])


def _relabel(folder, record, label):
    path = folder / "data_batch_2.bin"
    raw = bytearray(path.read_bytes())
    raw[3073 * record] = label
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda f: _truncate(f, "data_batch_3.bin", 3 * 3073 - 1),
         r"data_batch_3.bin must hold whole records of 3,073 bytes \(1 label byte \+ 3,072 pixel "
         r"bytes\), got 9,218 bytes: truncated, or not CIFAR-10's binary version"),
        (lambda f: _truncate(f, "test_batch.bin", 2 * 3073),
         "test_batch.bin must hold 3 records, got 2"),
        (lambda f: _truncate(f, "data_batch_1.bin", 0), "data_batch_1.bin must hold 3 records"),
        (lambda f: _relabel(f, 1, 10),
         r"data_batch_2.bin: labels must be 0..9, got 10 in record 1 \(1 of the 3 records read "
         r"have a label > 9\)"),
        (lambda f: _relabel(f, 0, 255), "data_batch_2.bin: labels must be 0..9, got 255 in rec"),
        (lambda f: (f / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES[:9])),
         r"batches.meta.txt must list 10 class names, one per line, got 9: \['airplane'"),
        (lambda f: (f / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES * 2)),
         "batches.meta.txt must list 10 class names, one per line, got 20"),
        (lambda f: (f / "batches.meta.txt").write_bytes(b"\xff\xfe\x00"),
         "batches.meta.txt must be text listing the 10 class names"),
    ],
)
def test_cifar10_bad_files_are_refused_naming_the_file(tmp_path, small_records, damage, match):
    _write_cifar10(tmp_path / "bin")
    damage(tmp_path / "bin")
    with pytest.raises(OSError, match=match):
        load_cifar10(tmp_path / "bin")


@pytest.mark.parametrize("name", [*TRAIN_FILES, "test_batch.bin", "batches.meta.txt"])
def test_cifar10_missing_file_is_named(tmp_path, small_records, name):
    _write_cifar10(tmp_path / "bin")
    (tmp_path / "bin" / name).unlink()
    with pytest.raises(FileNotFoundError, match=rf"bin/{name} is missing \(a CIFAR-10 binary "
                       r"folder holds data_batch_1.bin, .*, data_batch_5.bin, test_batch.bin and "
                       r"batches.meta.txt\)"):
        load_cifar10(tmp_path / "bin")


def test_cifar10_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 folder .*nowhere does not exist \("
                       "expected the cifar-10-batches-bin folder"):
        load_cifar10(tmp_path / "nowhere")
    (tmp_path / "a_file").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="a_file is not a folder"):
        load_cifar10(tmp_path / "a_file")


def test_cifar10_real_files_must_have_10000_records(tmp_path):
    _write_cifar10(tmp_path / "bin")  # 3 records a file, and no monkeypatch: refused
    with pytest.raises(OSError, match="data_batch_1.bin must hold 10,000 records, got 3"):
        load_cifar10(tmp_path / "bin")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"path": 3}, TypeError, "path must be a str or os.PathLike .*, got 3 of type int"),
        ({"n_train": 0}, ValueError, "n_train must be None or an integer >= 1 and <= 15, got 0"),
        ({"n_train": 16}, ValueError, "n_train must be None or an integer >= 1 and <= 15, got 16"),
        ({"n_test": 4}, ValueError, "n_test must be None or an integer >= 1 and <= 3, got 4"),
        ({"n_test": 2.0}, TypeError, "n_test must be None or an integer"),
    ],
)
def test_cifar10_bad_arguments(tmp_path, small_records, kwargs, error, match):
    _write_cifar10(tmp_path / "bin")
    kwargs = {"path": tmp_path / "bin", **kwargs}
    with pytest.raises(error, match=match):
        load_cifar10(**kwargs)
