"""Checkpoints and resume; History files."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _records import toy_round

from minisplit import datasets, mlp
from minisplit import load as ms_load
from minisplit.growth import GrowthConfig, History, grow
from minisplit.growth import checkpoint as ckpt

CONFIG = GrowthConfig(
    strategy="random_split", steps_per_round=80, batch_size=16, budget=None, max_rounds=3,
    selection="k", k=1, seed=3,
)


class Interrupt(Exception):
    """Stands for a crash (or Ctrl-C) between two rounds."""


@pytest.fixture(scope="module")
def data():
    return datasets.rbf_teacher(n=48, seed=0)


@pytest.fixture(scope="module")
def straight(data):
    X, y = data
    return grow(mlp([1, 2, 1], seed=0), X, y, CONFIG)


def _interrupt_after(round_index):
    def progress(event):
        if event["event"] == "round" and event["round"] == round_index:
            raise Interrupt

    return progress


def test_resume_is_bit_identical_to_an_uninterrupted_run(data, straight, tmp_path):
    X, y = data
    folder = tmp_path / "run"
    with pytest.raises(Interrupt):
        grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=folder,
             progress=_interrupt_after(2))
    saved = ckpt.load_checkpoint(folder)
    assert len(saved.history.rounds) == 3  # rounds 0, 1, 2 done
    events = []
    resumed = grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=folder, resume=True,
                   progress=events.append)
    assert [e["round"] for e in events] == [3, 3]  # one more round, then the stop
    assert resumed.history.without_times() == straight.history.without_times()
    assert len(straight.history.rounds) == 4
    for p, q in zip(resumed.net.params, straight.net.params):
        np.testing.assert_array_equal(p, q)


def test_a_checkpoint_holds_the_whole_state(data, tmp_path):
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    result = grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    saved = ckpt.load_checkpoint(tmp_path)
    assert saved.config == config.to_dict()
    assert saved.history.rounds == result.history.rounds
    assert saved.rng_state["bit_generator"] == "PCG64"
    assert int(saved.optimizer["t"]) == result.history.total_steps
    for p, q in zip(saved.net.params, result.net.params):
        np.testing.assert_array_equal(p, q)
    snapshots = [e for e in os.listdir(tmp_path) if e.startswith("snapshot-")]
    assert len(snapshots) == 1
    assert sorted(os.listdir(tmp_path)) == sorted(["LATEST", "LOCK", "RUN", *snapshots])


def _state_of(folder):
    saved = ckpt.load_checkpoint(folder)
    return saved.history.to_json(), [p.copy() for p in saved.net.params], saved.rng_state


@pytest.mark.parametrize("crash_at", ["network.npz", "optimizer.npz", "LATEST"])
def test_an_interrupted_write_leaves_the_previous_checkpoint(data, tmp_path, monkeypatch,
                                                             crash_at):
    """The process dies while writing the network, the optimiser state, or renaming LATEST."""
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    before = _state_of(tmp_path)
    real_replace, real_write = os.replace, ckpt._write_file

    def replace(src, dst):  # io.save and write_atomic end with os.replace(temporary, path)
        if os.path.basename(dst) == crash_at:
            raise Interrupt
        real_replace(src, dst)

    def write_file(path, write):
        real_write(path, write)  # the bytes are on disk, then the process dies
        if os.path.basename(path) == crash_at:
            raise Interrupt

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(ckpt, "_write_file", write_file)
    with pytest.raises(Interrupt):  # another run replacing it dies in its first snapshot
        grow(mlp([1, 2, 1], seed=5), X, y, config, checkpoint=tmp_path, overwrite=True)
    monkeypatch.undo()
    after = _state_of(tmp_path)
    assert after[0] == before[0] and after[2] == before[2]
    for p, q in zip(after[1], before[1]):
        np.testing.assert_array_equal(p, q)
    # the next write succeeds and tidies the half-written snapshot away
    grow(mlp([1, 2, 1], seed=5), X, y, config, checkpoint=tmp_path, overwrite=True)
    assert len([e for e in os.listdir(tmp_path) if e.startswith("snapshot-")]) == 1
    assert _state_of(tmp_path)[0] != before[0]


def test_a_checkpoint_of_another_run_is_refused(data, tmp_path):
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    others = [
        (mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(config, lr=0.02)),
        (mlp([1, 2, 1], seed=0), X, y + 1.0, config),
        (mlp([1, 2, 1], seed=1), X, y, config),
    ]
    for net, X_, y_, config_ in others:
        with pytest.raises(ValueError, match="another run"):
            grow(net, X_, y_, config_, checkpoint=tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_afresh(data, straight, tmp_path):
    X, y = data
    result = grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=tmp_path / "new", resume=True)
    assert result.history.without_times() == straight.history.without_times()


def test_load_checkpoint_errors(tmp_path):
    assert ckpt.load_checkpoint(tmp_path / "missing") is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="directory"):
        ckpt.load_checkpoint(tmp_path / "file")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "LATEST").write_text("snapshot-9999-gone\n")
    with pytest.raises(ValueError, match="missing snapshot"):
        ckpt.load_checkpoint(tmp_path / "dir")


def test_fingerprint_sees_config_data_and_network():
    X, y = np.zeros((4, 1)), np.zeros((4, 1))
    net = mlp([1, 2, 1], seed=0)
    base = ckpt.fingerprint({"a": 1}, X, y, net)
    assert base == ckpt.fingerprint({"a": 1}, X.copy(), y.copy(), mlp([1, 2, 1], seed=0))
    assert base != ckpt.fingerprint({"a": 2}, X, y, net)
    assert base != ckpt.fingerprint({"a": 1}, X[:3], y[:3], net)
    assert base != ckpt.fingerprint({"a": 1}, X + 1e-300, y, net)
    assert base != ckpt.fingerprint({"a": 1}, X, y, mlp([1, 3, 1], seed=0))


# ---- History files -----------------------------------------------------------------------


def test_history_json_round_trip(straight, tmp_path):
    path = tmp_path / "history.json"
    straight.history.save(path)
    loaded = History.load(path)
    assert loaded == straight.history  # floats survive JSON exactly
    assert json.loads(path.read_text())["format"] == "minisplit.history"
    assert [f for f in os.listdir(tmp_path)] == ["history.json"]  # no temporary left


def test_history_views():
    h = History(
        meta={},
        rounds=[
            toy_round(surgery=None, steps=3, losses=[4.0, 3.0, 2.0], time_train=1.0),
            toy_round(surgery="split", steps=2, losses=[1.5, 1.0], time_train=2.0),
        ],
    )
    steps, losses = h.step_losses()
    np.testing.assert_array_equal(steps, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(losses, [4.0, 3.0, 2.0, 1.5, 1.0])
    assert h.split_steps() == [3] and h.total_steps == 5
    assert h.without_times().column("time_train") == [0.0, 0.0]
    assert h.column("time_train") == [1.0, 2.0]  # the original is untouched


@pytest.mark.parametrize(
    "text", ["not json", '{"format": "other"}', '{"format": "minisplit.history", "version": 9}']
)
def test_history_refuses_foreign_files(tmp_path, text):
    path = tmp_path / "h.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        History.load(path)


# ---- a run owns its folder (nothing lost, nothing deleted that the run did not write) --------


def _snapshot_names(folder):
    return sorted(e for e in os.listdir(folder) if e.startswith("snapshot-"))


def test_a_second_run_into_a_used_folder_is_refused_unless_told_to_overwrite(data, tmp_path):
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    grow(mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(config, seed=1), checkpoint=tmp_path)
    first = _snapshot_names(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")  # a file the user put there
    (tmp_path / "snapshot-of-my-own").mkdir()  # named like a snapshot, written by someone else
    for again in (dataclasses.replace(config, seed=7), dataclasses.replace(config, seed=1)):
        with pytest.raises(ValueError, match="holds the checkpoint of a run; pass resume=True"):
            grow(mlp([1, 2, 1], seed=0), X, y, again, checkpoint=tmp_path)
        assert _snapshot_names(tmp_path) == sorted([*first, "snapshot-of-my-own"])
    replaced = grow(mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(config, seed=7),
                    checkpoint=tmp_path, overwrite=True)
    names = _snapshot_names(tmp_path)
    assert len(names) == 2 and "snapshot-of-my-own" in names and first[0] not in names
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert ckpt.load_checkpoint(tmp_path).history.rounds == replaced.history.rounds


def test_a_lost_latest_is_recovered_from_the_newest_complete_snapshot(data, straight, tmp_path):
    X, y = data
    with pytest.raises(Interrupt):
        grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=tmp_path,
             progress=_interrupt_after(2))
    (snapshot,) = _snapshot_names(tmp_path)
    (tmp_path / "LATEST").unlink()
    with pytest.raises(ValueError, match="no LATEST"):  # never read as "no checkpoint"
        ckpt.load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="holds the checkpoint of a run"):
        grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=tmp_path)  # not resumed: refused
    # a newer snapshot that never got complete is passed over
    newer = tmp_path / snapshot.replace("snapshot-0003", "snapshot-0004")
    newer.mkdir()
    (newer / "state.json").write_text("{")
    resumed = grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=tmp_path, resume=True)
    assert resumed.history.without_times() == straight.history.without_times()


def test_a_lost_latest_with_no_complete_snapshot_is_refused(data, tmp_path):
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    (snapshot,) = _snapshot_names(tmp_path)
    (tmp_path / "LATEST").unlink()
    (tmp_path / snapshot / "network.npz").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="none of its snapshots is complete"):
        grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path, resume=True)
    assert _snapshot_names(tmp_path) == [snapshot]  # refused, and nothing deleted


def test_a_folder_in_use_by_a_running_run_is_refused(data, tmp_path):
    X, y = data
    config = dataclasses.replace(CONFIG, max_rounds=1)
    stamp = ckpt.fingerprint(config.to_dict(), X, y, mlp([1, 2, 1], seed=0))
    with ckpt.CheckpointFolder(tmp_path, stamp):  # another run holds the lock
        with pytest.raises(RuntimeError, match="in use by another run"):
            grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path)
    grow(mlp([1, 2, 1], seed=0), X, y, config, checkpoint=tmp_path, resume=True)  # lock gone


def test_an_unusable_checkpoint_destination_fails_before_any_training(data, tmp_path):
    X, y = data
    (tmp_path / "file").write_text("x")
    events = []
    for bad, match in ((tmp_path / "file", "must be a directory"),
                       (tmp_path / "file" / "sub", "cannot be used")):
        with pytest.raises(ValueError, match=match):
            grow(mlp([1, 2, 1], seed=0), X, y, CONFIG, checkpoint=bad, progress=events.append)
    assert events == []


@pytest.mark.parametrize("damage", ["state.json", "network.npz", "optimizer.npz", "LATEST"])
def test_a_damaged_snapshot_is_a_value_error_naming_the_checkpoint(data, tmp_path, damage):
    X, y = data
    grow(mlp([1, 2, 1], seed=0), X, y, dataclasses.replace(CONFIG, max_rounds=1),
         checkpoint=tmp_path)
    (snapshot,) = _snapshot_names(tmp_path)
    target = tmp_path / (damage if damage == "LATEST" else f"{snapshot}/{damage}")
    target.write_bytes(b"\xff\xfe not what it was")
    with pytest.raises(ValueError, match="checkpoint"):
        ckpt.load_checkpoint(tmp_path)


_CHILD = """
import sys
import minisplit as ms
from minisplit.growth import GrowthConfig
config = GrowthConfig(**{config!r})
X, y = ms.datasets.rbf_teacher(n=48, seed=0)
report = lambda event: print(event["event"], event["round"], flush=True)
result = ms.grow(ms.mlp([1, 2, 1], seed=0), X, y, config, checkpoint=sys.argv[1], resume=True,
                 progress=report)
result.history.save(sys.argv[2])
ms.save(result.net, sys.argv[3])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_a_run_killed_at_random_moments_resumes_bit_identically(tmp_path):
    """Fault injection: SIGKILL a checkpointed run at random moments, resume it each time.

    Each kill lands a random 0-30 ms after a round ended: while the next round trains, or
    while its snapshot is being written.
    """
    config = dataclasses.replace(CONFIG, max_rounds=8)
    X, y = datasets.rbf_teacher(n=48, seed=0)
    straight = grow(mlp([1, 2, 1], seed=0), X, y, config)
    script = _CHILD.format(config=config.to_dict())
    paths = [str(tmp_path / name) for name in ("ck", "history.json", "net.npz")]
    rng = np.random.default_rng(0)
    rounds_seen = []
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", script, *paths], stdout=subprocess.PIPE,
                                 text=True)
        line = child.stdout.readline()  # "round r": that round's snapshot is on disk
        time.sleep(float(rng.uniform(0.0, 0.03)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        rounds_seen.append(line.split())
    final = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert all(words[0] == "round" for words in rounds_seen)
    assert [int(w[1]) for w in rounds_seen] == sorted(int(w[1]) for w in rounds_seen)
    resumed = History.load(paths[1])
    assert resumed.without_times() == straight.history.without_times()
    for p, q in zip(ms_load(paths[2]).params, straight.net.params):
        np.testing.assert_array_equal(p, q)
