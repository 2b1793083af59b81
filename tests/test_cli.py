"""The command line: verify table, grow end to end, exit statuses, --help, one-line errors."""

import base64
import contextlib
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from _records import timeless, toy_round

from minisplit import ACTIVATIONS, LOSSES, Comparison, History, datasets, growth
from minisplit.activations import Activation
from minisplit.cli import (
    COMMANDS,
    DEFAULT_COMMAND,
    LAYER_TYPES,
    STRATEGY_NAMES,
    TASKS,
    Progress,
    build_parser,
    main,
    size_table,
)


def table_rows(text):
    """(layer, activation, loss, status) of each table line in the printed output."""
    rows = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in LAYER_TYPES:
            rows.append((words[0], words[1], words[2], words[-1]))
    return rows


#: The verified layer types with an activation: Dense, Conv2d and DepthwiseConv2d (DWConv),
#: each also with batch norm in train mode and in eval mode (one row each).
NEURON_TYPES = ("Dense", "Dense+BN/train", "Dense+BN/eval", "Conv2d", "Conv2d+BN/train",
                "Conv2d+BN/eval", "DWConv", "DWConv+BN/train", "DWConv+BN/eval")


@pytest.fixture(scope="module")
def verify_output():
    """One run of ``main(["verify"])``: (exit status, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["verify"])
    return status, out.getvalue()


def test_verify_passes_and_prints_every_layer_activation_and_loss(verify_output):
    status, text = verify_output
    assert status == 0
    rows = table_rows(text)
    expected = [
        (layer, activation, loss, "ok")
        for layer in NEURON_TYPES
        for activation in ACTIVATIONS
        for loss in LOSSES
    ] + [("RBF", "-", loss, "ok") for loss in LOSSES]
    assert rows == expected
    assert "gradient" in text and "hvp" in text and "H symmetry" in text
    assert f"All {len(expected)} networks within tolerance 1e-06." in text


def record_runs(monkeypatch, name="verify"):
    """Replace a command's run with a recorder of its parsed arguments."""
    calls = []
    command = COMMANDS[name]
    fake = type(command)(command.help, command.add_arguments, lambda args: calls.append(args) or 0)
    monkeypatch.setitem(COMMANDS, name, fake)
    return calls


def test_no_arguments_runs_grow_with_its_defaults(monkeypatch):
    assert DEFAULT_COMMAND == "grow"
    calls = record_runs(monkeypatch, "grow")
    assert main([]) == 0
    assert len(calls) == 1
    args = calls[0]
    assert (args.command, args.task, args.seeds, args.strategies) == (
        "grow",
        "spirals",
        3,
        None,  # resolved by the run: every strategy that can grow the task's network
    )
    assert (args.out, args.quiet, args.eps, args.selection) == (
        "minisplit-output",
        False,
        0.1,
        "fraction",
    )


def test_options_without_a_command_go_to_grow(monkeypatch):
    calls = record_runs(monkeypatch, "grow")
    assert main(["--seeds", "2", "--eps", "line_search", "--strategies", "splitting,fixed"]) == 0
    assert (calls[0].command, calls[0].seeds, calls[0].eps) == ("grow", 2, "line_search")
    assert calls[0].strategies == ["splitting", "fixed"]


def test_the_old_methods_option_still_works_and_says_it_is_deprecated(monkeypatch, capsys):
    calls = record_runs(monkeypatch, "grow")
    assert main(["grow", "--methods", "splitting,net2net"]) == 0
    assert calls[0].strategies == ["splitting", "net2net"]
    assert "--methods is deprecated, use --strategies" in capsys.readouterr().err


def test_verify_fails_when_a_derivative_is_wrong(monkeypatch, capsys):
    tanh = ACTIVATIONS["tanh"]
    wrong = Activation("tanh", tanh.f, tanh.df, lambda z: 2.0 * tanh.d2f(z))
    monkeypatch.setitem(ACTIVATIONS, "tanh", wrong)
    assert main(["verify", "--directions", "1"]) == 1
    text = capsys.readouterr().out
    failed = {row[:3] for row in table_rows(text) if row[3] == "FAIL"}
    assert failed == {(layer, "tanh", loss) for layer in NEURON_TYPES for loss in LOSSES}
    assert f"FAILED: {len(failed)} of {len(table_rows(text))} networks exceed" in text
    # Dense, Conv2d and DepthwiseConv2d, without BN and with BN in either mode
    assert len(failed) == 18


def test_verify_options_are_parsed(monkeypatch):
    calls = record_runs(monkeypatch)
    assert main(["verify", "--seed", "3", "--directions", "2"]) == 0
    assert (calls[0].seed, calls[0].directions) == (3, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "minisplit: error: unrecognized arguments: --bogus"),
        (["grow-everything"], "minisplit: error: argument COMMAND: invalid choice"),
        (["--rounds", "-1"], "--rounds: must be a positive integer, got '-1'"),
        (["grow", "--task", "nope"], "argument --task: invalid choice: 'nope'"),
        (["grow", "--strategies", "splitting,nope"], "--strategies: must be distinct names from"),
        (["grow", "--eps", "big"], "--eps: must be a number or 'line_search', got 'big'"),
        # refused by GrowthConfig, not by the parser
        (["grow", "--eps", "0"], "minisplit grow: error: eps must be a finite number > 0, got 0"),
        (["grow", "--fraction", "1.5"],
         "minisplit grow: error: fraction must be a finite number > 0 and <= 1, got 1.5"),
        (["grow", "--selection", "knapsack"], 'selection="knapsack" needs knapsack_flops'),
        (["grow", "--budget-kind", "params"], "--budget-kind params needs a --budget"),
        (["grow", "--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
        (["grow", "--strategies", "fixed,net2net"], "fixed trains the splitting run's final"),
        (["verify", "--seed", "x"], "minisplit verify: error: argument --seed: must be an integer"),
        (["verify", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
        (["verify", "--directions", "0"], "--directions: must be a positive integer, got '0'"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []  # refused before any output folder is made


def test_an_output_folder_that_cannot_be_made_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["grow", "--out", str(blocker / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be written" in err and str(blocker) in err


def test_a_bad_option_exits_2_from_the_shell():
    result = subprocess.run(
        [sys.executable, "-m", "minisplit", "--rounds", "-1"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_help_documents_every_command_and_option(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "minisplit", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: minisplit" in result.stdout
    for name in COMMANDS:
        assert name in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--seed", "--directions"):
        assert option in text


GROW_OPTIONS = (
    "--task",
    "--strategies",
    "--methods",
    "--seeds",
    "--start",
    "--budget",
    "--budget-kind",
    "--rounds",
    "--steps",
    "--lr",
    "--eps",
    "--selection",
    "--fraction",
    "--k",
    "--out",
    "--checkpoint",
    "--resume",
    "--overwrite",
    "--jobs",
    "--quiet",
)


def test_grow_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["grow", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0].choices["grow"]
    options = [a.option_strings[0] for a in sub._actions if a.option_strings[0] != "-h"]
    assert sorted(options) == sorted(GROW_OPTIONS)
    for action in sub._actions:
        assert action.help, f"{action.option_strings} has no help text"
    for option in GROW_OPTIONS:
        assert option in text
    for name in (*datasets.DATASETS, *STRATEGY_NAMES):
        assert name in text


def test_every_data_set_has_grow_defaults():
    assert set(TASKS) == set(datasets.DATASETS)
    assert all(1 <= task.start < task.budget for task in TASKS.values())


# ---- grow end to end, on a tiny setting ---------------------------------------------------

#: The runs the default --strategies resolves to for a tanh MLP (prototype-only ones excluded).
MLP_RUNS = ("splitting", "random_split", "net2net", "new_neurons", "gradmax", "fixed", "scratch")

TINY = ["--task", "spirals", "--seeds", "2", "--start", "2", "--budget", "4", "--steps", "25"]


@pytest.fixture(scope="module")
def grow_run(tmp_path_factory):
    """One tiny ``grow`` with every method: (status, stdout, stderr, output folder)."""
    out_dir = tmp_path_factory.mktemp("grow") / "out"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["grow", *TINY, "--out", str(out_dir)])
    return status, out.getvalue(), err.getvalue(), out_dir


def table_of(text, title):
    """{size: {method: cell}} of the printed table whose title starts with ``title``."""
    block = text.split(title, 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    methods = block[0].split()[1:]
    return {int(w[0]): dict(zip(methods, w[1:])) for w in (line.split() for line in block[1:])}


def test_grow_writes_the_promised_files(grow_run):
    status, text, _, out_dir = grow_run
    assert status == 0
    expected = {
        "history.json",
        "comparison.json",
        "table.txt",
        "training.png",
        "spectrum.png",
        "comparison.png",
        "accuracy.png",
        "report.html",
    }
    assert {p.name for p in out_dir.iterdir()} == expected | {".minisplit-output.json"}
    marker = json.loads((out_dir / ".minisplit-output.json").read_text())
    assert sorted(marker["files"]) == sorted(expected)
    for name in expected:
        assert name in text
    assert str(out_dir.resolve()) in text
    for name in ("training.png", "spectrum.png", "comparison.png", "accuracy.png"):
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    comparison = Comparison.load(out_dir / "comparison.json")
    assert set(comparison.histories) == set(MLP_RUNS) and comparison.seeds == [0, 1]
    assert comparison.dataset == "spirals"
    history = History.load(out_dir / "history.json")
    assert history.meta["strategy"] == "splitting" and history.meta["config"]["seed"] == 0
    assert history.rounds == comparison.histories["splitting"][0].rounds
    assert (out_dir / "table.txt").read_text() in text


def test_grow_prints_the_median_over_seeds_at_every_size(grow_run):
    _, text, _, out_dir = grow_run
    comparison = Comparison.load(out_dir / "comparison.json")
    for title, metric in (("train loss", "train_loss"), ("test accuracy", "test_accuracy")):
        table = table_of(text, title)
        for method, runs in comparison.histories.items():
            at = {}
            for h in runs:
                for r in h.rounds:
                    at.setdefault(r.n_neurons, []).append(getattr(r, metric))
            for size, row in table.items():
                cell = row[method]
                if size in at:
                    assert float(cell) == pytest.approx(np.median(at[size]), rel=1e-3)
                else:
                    assert cell == "-"
        assert {2, 3, 4} <= set(table)  # the starting size and the grown ones


def test_grow_with_two_jobs_writes_the_serial_comparison(grow_run, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(["grow", *TINY, "--jobs", "2", "--quiet", "--out", str(out_dir)]) == 0
    parallel = Comparison.load(out_dir / "comparison.json")
    assert timeless(parallel) == timeless(Comparison.load(grow_run[3] / "comparison.json"))
    assert capsys.readouterr().out.split("\n\n")[1:3] == grow_run[1].split("\n\n")[1:3]


def test_grow_shows_progress_on_stderr(grow_run):
    """Not a terminal: one line per finished run, and a last line when all are done."""
    _, _, err, _ = grow_run
    lines = err.splitlines()
    assert "\r" not in err
    runs = 2 * len(MLP_RUNS)  # every strategy and reference run, two seeds
    assert len(lines) == runs + 1
    first = re.fullmatch(r"\[#\.{19}\] 1/(\d+)  splitting    seed 0  (\d+) rounds, (\d+) "
                         r"neurons, loss [0-9.e-]+, stop: (\w+) \([0-9.]+ s\)", lines[0])
    assert first and int(first.group(1)) == runs and first.group(4) == "budget"
    last = [n for n in MLP_RUNS if n not in growth.REFERENCES][-1]  # references follow splitting
    assert lines[-2].startswith(f"[####################] {runs}/{runs}  {last:<12} seed 1  ")
    assert any("fixed        seed 1" in line and "steps from scratch, stop: steps" in line
               for line in lines)
    for name in MLP_RUNS:
        assert sum(f"  {name} " in line for line in lines) == 2  # once per seed
    assert lines[-1] == f"[####################] {runs}/{runs}  done"


def test_quiet_grow_writes_nothing_on_stderr(tmp_path, capsys):
    argv = ["grow", *TINY, "--seeds", "1", "--strategies", "net2net", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert table_of(captured.out, "train loss")[2].keys() == {"net2net"}


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_rewrites_one_line_on_a_terminal():
    stream, now = FakeTerminal(), [100.0]
    progress = Progress(["splitting", "fixed"], 1, stream, clock=lambda: now[0])
    rounds = [(0, 2, 0.5, 100), (1, 3, 0.25, 150)]
    for r, n, loss, steps in rounds:
        now[0] += 2.0
        event = {"event": "round", "round": r, "n_neurons": n, "loss": loss, "total_steps": steps}
        progress({**event, "strategy": "splitting", "seed": 0})
    progress({"event": "stop", "round": 1, "reason": "budget", "strategy": "splitting", "seed": 0})
    fixed = {"strategy": "fixed", "seed": 0}
    progress({"event": "reference", "text": "150 steps from scratch", **fixed})
    progress({"event": "stop", "round": 0, "reason": "steps", **fixed})
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    shown = text.rstrip("\n").split("\r")[1:]
    assert shown[1].startswith("[....................] 0/2  splitting    seed 0  round  1")
    assert "neurons   3  loss 0.25" in shown[1] and shown[1].rstrip().endswith("[4 s, ETA ?]")
    # one of two runs done after 4 s: 4 s more to go
    assert shown[2].startswith("[##########..........] 1/2  fixed        seed 0  150 steps")
    assert shown[2].rstrip().endswith("[4 s, ETA 4 s]")
    assert shown[3].startswith("[####################] 2/2  done")
    # a shorter line is padded with spaces to wipe the longer one before it
    assert len(shown[3]) == len(shown[2].rstrip()) > len(shown[3].rstrip())


def test_size_table_takes_the_median_of_the_seeds_that_reached_a_size():
    def run(sizes, losses):
        rounds = [toy_round(n_neurons=n, train_loss=v) for n, v in zip(sizes, losses)]
        return History({}, rounds)

    comparison = Comparison(
        "toy",
        [0, 1, 2],
        {
            "splitting": [run([1, 2], [4.0, 1.0]), run([1, 2], [6.0, 3.0]), run([1, 3], [5, 9])],
            "fixed": [run([2], [7.0]), run([2], [8.0]), run([3], [0.5])],
        },
    )
    lines = size_table(comparison, "train_loss").splitlines()
    assert lines[0].split() == ["neurons", "splitting", "fixed"]
    # size 1: median(4, 6, 5) = 5; size 2: median(1, 3) = 2 and median(7, 8) = 7.5
    assert [line.split() for line in lines[1:]] == [
        ["1", "5", "-"],
        ["2", "2", "7.5"],
        ["3", "9", "0.5"],
    ]


# ---- the output folder: replaced as a set, never mixed, never someone else's ---------------

QUICK = ["grow", "--seeds", "1", "--start", "1", "--budget", "2", "--steps", "10", "--quiet",
         "--strategies", "splitting"]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_rerun_replaces_the_previous_outputs_as_a_set(tmp_path, capsys):
    out = tmp_path / "o"
    assert main([*QUICK, "--task", "moons", "--out", str(out)]) == 0
    assert (out / "accuracy.png").exists()
    assert main([*QUICK, "--task", "rbf_teacher", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert "accuracy.png" not in names  # the classification run's stale figure is gone
    assert History.load(out / "history.json").meta["task"] == "regression"
    assert [p.name for p in tmp_path.iterdir()] == ["o"]  # no staging folder left behind


def test_a_folder_with_other_files_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("do not lose me")
    with pytest.raises(SystemExit) as exit_info:
        main([*QUICK, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds files minisplit did not write (thesis.tex)" in err
    assert _files(out) == {"thesis.tex": b"do not lose me"}


def test_ctrl_c_prints_one_line_exits_130_and_keeps_the_previous_outputs(tmp_path, capsys,
                                                                        monkeypatch):
    out = tmp_path / "o"
    assert main([*QUICK, "--task", "moons", "--out", str(out)]) == 0
    before = _files(out)
    import minisplit.cli.grow as grow_command

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(grow_command, "write_outputs", interrupted)
    capsys.readouterr()
    assert main([*QUICK, "--task", "rbf_teacher", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_write_that_hits_a_file_size_limit_fails_cleanly_and_keeps_the_old_outputs(tmp_path):
    import resource

    out = tmp_path / "o"
    argv = [sys.executable, "-m", "minisplit", *QUICK, "--task", "moons", "--out", str(out)]
    assert subprocess.run(argv, capture_output=True).returncode == 0
    before = _files(out)

    def small_files():  # in the child: no file may grow beyond 25 KB
        resource.setrlimit(resource.RLIMIT_FSIZE, (25 * 1024, 25 * 1024))

    limited = subprocess.run([*argv[:-4], "--task", "rbf_teacher", "--out", str(out)],
                             capture_output=True, text=True, preexec_fn=small_files)
    assert limited.returncode == 1, limited.stderr
    assert limited.stderr.count("\n") == 1 and "cannot write the outputs" in limited.stderr
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_a_checkpointed_comparison_is_refused_again_unless_resumed_or_overwritten(tmp_path,
                                                                                capsys):
    ck = str(tmp_path / "ck")
    argv = [*QUICK, "--task", "moons", "--checkpoint", ck, "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "ck" / "splitting")) == ["seed-0"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds the checkpoint of a run" in err
    assert main([*argv, "--resume"]) == 0  # finished runs resume at their end
    assert capsys.readouterr().out == first
    assert main([*argv[:-4], "--lr", "0.05", *argv[-4:], "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main([*QUICK, "--resume", "--out", str(tmp_path / "p")])
    assert "need a --checkpoint" in capsys.readouterr().err


def test_the_report_is_one_self_contained_page_with_every_section(grow_run):
    _, _, _, out_dir = grow_run
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings == [
        "1. A local minimum that splitting escapes",
        "2. The eps² law on this run&#x27;s first split",
        "3. Growth at matched sizes",
        "4. Splitting indices, round by round",
        "5. Verdict and settings",
        "The tables as printed",
    ]
    images = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(images) == 5 and all(src.startswith("data:image/png;base64,") for src in images)
    for figure in images:  # each one decodes to a PNG
        assert base64.b64decode(figure.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page and "http" not in page and "<link" not in page
    assert "all positive, so this is a strict local minimum" in page
    comparison = Comparison.load(out_dir / "comparison.json")
    standing = comparison.standing("train_loss")["new_neurons"]
    assert (f"new_neurons</td><td>{len(standing.at_least_as_good)} of "
            f"{len(standing.matched)}</td>") in page
