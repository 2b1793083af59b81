"""Tests of save/load: bit-exact round trips, damaged and foreign files, atomic writes."""

import json
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minisplit import (
    RBF,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    Network,
    load,
    mlp,
    save,
)


def _rbf_net():
    rng = np.random.default_rng(3)
    layers = [
        Dense(3, 4, "sigmoid", seed=rng),
        RBF(4, 5, width=0.7, seed=rng),
        Dense(5, 2, "identity", seed=rng),
    ]
    return Network(layers, "cross_entropy")


def _assert_same_network(a, b, X):
    assert [type(layer) for layer in a.layers] == [type(layer) for layer in b.layers]
    assert [layer.config() for layer in a.layers] == [layer.config() for layer in b.layers]
    assert a.loss_fn.name == b.loss_fn.name
    assert len(a.params) == len(b.params)
    for p, q in zip(a.params, b.params):
        assert p.dtype == q.dtype == np.float64
        assert np.array_equal(p, q)
    assert np.array_equal(a.forward(X), b.forward(X))


@pytest.fixture
def saved(tmp_path):
    """A saved MLP, its path and the bytes of the file."""
    path = tmp_path / "net.npz"
    net = mlp([3, 4, 2], activation="tanh", seed=0)
    save(net, path)
    return net, path, path.read_bytes()


# ----------------------------------------------------------------------------- round trips


@given(
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    activation=st.sampled_from(["tanh", "sigmoid", "relu", "identity"]),
    loss=st.sampled_from(["mse", "cross_entropy"]),
    seed=st.integers(0, 2**16),
)
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_mlp_round_trip_is_bit_exact(tmp_path, sizes, activation, loss, seed):
    net = mlp(sizes, activation=activation, loss=loss, seed=seed)
    path = tmp_path / "mlp.npz"
    save(net, path)
    X = np.random.default_rng(seed).uniform(-3, 3, size=(4, sizes[0]))
    _assert_same_network(net, load(path), X)


def test_rbf_network_round_trip_is_bit_exact(tmp_path):
    net = _rbf_net()
    save(net, str(tmp_path / "rbf.npz"))
    X = np.random.default_rng(0).uniform(-3, 3, size=(6, 3))
    loaded = load(str(tmp_path / "rbf.npz"))
    _assert_same_network(net, loaded, X)
    assert loaded.layers[1].width == 0.7


def test_conv_network_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(5)
    layers = [
        Conv2d(1, 2, 3, padding=1, activation="tanh", seed=rng),
        AvgPool2d(2),
        Flatten(),
        Dense(2 * 2 * 2, 3, "identity", seed=rng),
    ]
    net = Network(layers, "cross_entropy")
    save(net, tmp_path / "conv.npz")
    X = rng.uniform(-3, 3, size=(2, 1, 4, 4))
    _assert_same_network(net, load(tmp_path / "conv.npz"), X)


def _per_axis_net(rng):
    """Conv2d (per-axis kernel, stride, padding) -> AvgPool2d((2, 1)) -> GlobalAvgPool2d ->
    Dense."""
    layers = [
        Conv2d(2, 3, (3, 2), stride=(1, 2), padding=(1, 0), activation="softplus", seed=rng),
        AvgPool2d((2, 1)),  # the 4x3 maps of a 4x6 input -> 2x3
        GlobalAvgPool2d(),
        Dense(3, 2, "identity", seed=rng),
    ]
    return Network(layers, "mse")


def test_per_axis_conv_and_global_pool_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(6)
    net = _per_axis_net(rng)
    save(net, tmp_path / "gap.npz")
    loaded = load(tmp_path / "gap.npz")
    _assert_same_network(net, loaded, rng.uniform(-3, 3, size=(2, 2, 4, 6)))
    assert loaded.layers[0].config()["stride"] == [1, 2]
    assert (loaded.layers[0].stride, loaded.layers[0].padding) == ((1, 2), (1, 0))
    assert loaded.layers[1].k == (2, 1) and isinstance(loaded.layers[2], GlobalAvgPool2d)


def test_files_written_with_int_stride_padding_and_window_still_load(tmp_path):
    # Files saved before the per-axis settings hold ints: {"stride": 2, "padding": 1},
    # {"k": 2}. They load to the layers of the pairs (2, 2), (1, 1), (2, 2).
    rng = np.random.default_rng(7)
    layers = [Conv2d(1, 2, 3, stride=2, padding=1, activation="tanh", seed=rng), AvgPool2d(2),
              Flatten(), Dense(2 * 2 * 2, 1, "identity", seed=rng)]
    net = Network(layers, "mse")
    path = tmp_path / "old.npz"
    save(net, path)

    def old_style(header, arrays):
        header["layers"][0]["config"].update(stride=2, padding=1)
        header["layers"][1]["config"].update(k=2)

    _rewrite(path, old_style)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(data["__minisplit__"].tobytes().decode("utf-8"))
    assert header["layers"][0]["config"]["stride"] == 2 and header["layers"][1]["config"]["k"] == 2
    loaded = load(path)
    _assert_same_network(net, loaded, rng.uniform(-3, 3, size=(3, 1, 7, 7)))
    assert loaded.layers[0].stride == (2, 2) and loaded.layers[0].padding == (1, 1)
    assert loaded.layers[1].k == (2, 2)


def test_grown_widths_travel_with_the_weights(tmp_path):
    net = mlp([2, 3, 1], seed=1)
    wide = net.layers[0].with_neuron_params(np.vstack([net.layers[0].neuron_params()] * 2))
    grown = Network([wide, Dense(6, 1, "identity", seed=2)], "mse")
    save(grown, tmp_path / "grown.npz")
    assert load(tmp_path / "grown.npz").layers[0].W.shape == (6, 2)


def test_path_is_used_exactly_as_given(tmp_path):
    path = tmp_path / "checkpoint.bin"
    save(mlp([2, 1], seed=0), path)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.bin"]
    assert load(path).layers[0].W.shape == (1, 2)


def test_save_overwrites_and_respects_the_umask(saved):
    _, path, _ = saved
    other = mlp([3, 1], seed=9)
    save(other, path)
    assert np.array_equal(load(path).layers[0].W, other.layers[0].W)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_file_holds_no_pickles_and_a_json_header(saved):
    _, path, _ = saved
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(data["__minisplit__"].tobytes().decode("utf-8"))
        assert all(data[key].dtype != object for key in data.files)
    assert header["format"] == "minisplit.network"
    assert header["version"] == 1
    assert [spec["type"] for spec in header["layers"]] == ["Dense", "Dense"]


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -22])
def test_truncated_file_raises_value_error(saved, keep):
    _, path, data = saved
    end = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:end])
    with pytest.raises(ValueError, match="not a readable minisplit network file"):
        load(path)


def test_flipped_byte_in_the_weights_raises_value_error(saved):
    net, path, data = saved
    weights = net.layers[0].W.tobytes()
    at = data.index(weights) + len(weights) // 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    with pytest.raises(ValueError, match="CRC"):
        load(path)


def test_random_bytes_raise_value_error(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable minisplit network file"):
        load(path)


def test_pickled_object_array_inside_npz_raises_value_error(saved):
    _, path, _ = saved
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["layer0.W"] = np.array([{"not": "weights"}], dtype=object)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="pickled"):
        load(path)


def test_pickle_file_raises_value_error(tmp_path):
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(mlp([2, 1], seed=0)))
    with pytest.raises(ValueError, match="pickled"):
        load(path)


def test_foreign_npz_and_npy_raise_value_error(tmp_path):
    np.savez(tmp_path / "foreign.npz", W=np.ones((2, 2)))
    with pytest.raises(ValueError, match="no '__minisplit__' entry"):
        load(tmp_path / "foreign.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"one \.npy array"):
        load(tmp_path / "single.npy")
    with zipfile.ZipFile(tmp_path / "text.zip", "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match=r"not \.npy arrays"):
        load(tmp_path / "text.zip")


def _rewrite(path, change):
    """Load the arrays of ``path``, let ``change(header, arrays)`` edit them, save again."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    header = json.loads(arrays["__minisplit__"].tobytes().decode("utf-8"))
    change(header, arrays)
    arrays["__minisplit__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _set(key, value):
    return lambda header, arrays: header.update({key: value})


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("format", "something.else"), "no format tag"),
        (_set("version", 2), "file-format version 2"),
        (_set("loss", "hinge"), "loss must be one of"),
        (lambda h, a: h["layers"][0].update(type="Lambda"), "unknown type 'Lambda'"),
        (lambda h, a: h["layers"][0]["config"].update(n_out=7), "W must have shape"),
        (lambda h, a: h["layers"][0]["config"].update(size=7), "bad config"),
        (lambda h, a: a.pop("layer1.b"), "missing array 'layer1.b'"),
        (lambda h, a: a.update({"layer1.b": a["layer1.b"].astype(np.float32)}), "float64"),
        (lambda h, a: a.update(extra=np.ones(2)), "unexpected entries"),
    ],
)
def test_inconsistent_file_raises_value_error(saved, change, message):
    _, path, _ = saved
    _rewrite(path, change)
    with pytest.raises(ValueError, match=message):
        load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


def test_bad_arguments_raise(tmp_path):
    class Custom(Layer):
        pass

    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        save(mlp([2, 1], seed=0), 42)
    with pytest.raises(TypeError, match="net must be a Network"):
        save([Dense(2, 1)], tmp_path / "x.npz")
    with pytest.raises(ValueError, match=r"layer 1 \(Custom\) cannot be saved"):
        save(Network([Dense(2, 1), Custom()]), tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- atomicity


def _half_written_savez(f, **arrays):
    f.write(b"PK\x03\x04 the first bytes of a zip, then the disk fills up")
    raise OSError("No space left on device")


def _failing(*args, **kwargs):
    raise OSError("simulated crash")


@pytest.mark.parametrize(
    "target, replacement",
    [
        (np, ("savez", _half_written_savez)),
        (os, ("fsync", _failing)),
        (os, ("replace", _failing)),
    ],
)
def test_crash_mid_write_leaves_the_previous_file(saved, monkeypatch, target, replacement):
    _, path, before = saved
    monkeypatch.setattr(target, *replacement)
    with pytest.raises(OSError):
        save(mlp([3, 1], seed=7), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]
    load(path)


def test_interrupt_mid_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(mlp([2, 1], seed=0), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []
