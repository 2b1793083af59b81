"""The command line: verify table, exit statuses, --help, one-line errors."""

import contextlib
import io
import subprocess
import sys

import pytest

from minisplit import ACTIVATIONS, LOSSES
from minisplit.activations import Activation
from minisplit.cli import COMMANDS, DEFAULT_COMMAND, LAYER_TYPES, main


def table_rows(text):
    """(layer, activation, loss, status) of each table line in the printed output."""
    rows = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in LAYER_TYPES:
            rows.append((words[0], words[1], words[2], words[-1]))
    return rows


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
        for layer in ("Dense", "Conv2d")
        for activation in ACTIVATIONS
        for loss in LOSSES
    ] + [("RBF", "-", loss, "ok") for loss in LOSSES]
    assert rows == expected
    assert "gradient" in text and "hvp" in text and "H symmetry" in text
    assert f"All {len(expected)} networks within tolerance 1e-06." in text


def record_runs(monkeypatch):
    """Replace the verify command's run with a recorder of its parsed arguments."""
    calls = []
    command = COMMANDS["verify"]
    fake = type(command)(command.help, command.add_arguments, lambda args: calls.append(args) or 0)
    monkeypatch.setitem(COMMANDS, "verify", fake)
    return calls


def test_no_arguments_runs_the_default_command_with_its_defaults(monkeypatch):
    assert DEFAULT_COMMAND == "verify"
    calls = record_runs(monkeypatch)
    assert main([]) == 0
    assert len(calls) == 1
    assert (calls[0].command, calls[0].seed, calls[0].directions) == ("verify", 0, 4)


def test_verify_fails_when_a_derivative_is_wrong(monkeypatch, capsys):
    tanh = ACTIVATIONS["tanh"]
    wrong = Activation("tanh", tanh.f, tanh.df, lambda z: 2.0 * tanh.d2f(z))
    monkeypatch.setitem(ACTIVATIONS, "tanh", wrong)
    assert main(["verify", "--directions", "1"]) == 1
    text = capsys.readouterr().out
    failed = {row[:3] for row in table_rows(text) if row[3] == "FAIL"}
    assert failed == {(layer, "tanh", loss) for layer in ("Dense", "Conv2d") for loss in LOSSES}
    assert f"FAILED: 4 of {len(table_rows(text))} networks exceed" in text


def test_verify_options_are_parsed(monkeypatch):
    calls = record_runs(monkeypatch)
    assert main(["verify", "--seed", "3", "--directions", "2"]) == 0
    assert (calls[0].seed, calls[0].directions) == (3, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "minisplit: error: unrecognized arguments: --bogus"),
        (["grow-everything"], "minisplit: error: argument COMMAND: invalid choice"),
        (["verify", "--seed", "x"], "minisplit verify: error: argument --seed: invalid int"),
        (["verify", "--directions", "0"], "--directions: must be a positive integer, got '0'"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


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
