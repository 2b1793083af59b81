"""``minisplit prototypes`` end to end on a tiny setting, and its refusals."""

from __future__ import annotations

import re

import pytest
from _records import timeless

from minisplit import Comparison
from minisplit.cli import main

TINY = ["prototypes", "--seeds", "1", "--start", "2", "--budget", "4", "--steps", "20",
        "--strategies", "splitting,principal_split,new_prototype,scratch", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("protos") / "out"
    return main([*TINY, "--out", str(out)]), out


def test_the_command_writes_its_outputs_and_a_report(run, capsys):
    status, out = run
    assert status == 0
    assert {p.name for p in out.iterdir()} == {
        "table.txt", "family_tree.png", "accuracy.png", "comparison.json", "report.html",
        ".minisplit-output.json",
    }
    comparison = Comparison.load(out / "comparison.json")
    assert set(comparison.histories) == {"splitting", "principal_split", "new_prototype",
                                         "scratch"}
    sizes = comparison.histories["splitting"][0].column("n_neurons")
    assert sizes[0] == 2 and sizes[-1] == 4
    page = (out / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings[:4] == ["1. Squared distances cannot choose a direction",
                            "2. The split family tree",
                            "3. Accuracy against the number of prototypes",
                            "4. Verdict and settings"]
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3
    assert "<script" not in page and "http" not in page
    theorem = re.search(r"the largest difference between S and 2 g I is ([0-9.e+-]+)", page)
    assert theorem and float(theorem.group(1)) < 1e-12


def test_two_jobs_write_the_serial_comparison(run, tmp_path):
    out = tmp_path / "out"
    assert main([*TINY, "--jobs", "2", "--out", str(out)]) == 0  # three runs, two workers
    parallel = Comparison.load(out / "comparison.json")
    assert timeless(parallel) == timeless(Comparison.load(run[1] / "comparison.json"))


@pytest.mark.parametrize("argv, words", [
    (["prototypes", "--start", "5", "--budget", "5"], "--budget must be larger than --start"),
    (["prototypes", "--tau", "0"], "--tau must be > 0"),
    (["prototypes", "--strategies", "splitting,gradmax"], "must be distinct names from"),
    (["prototypes", "--strategies", "scratch"], "scratch needs splitting"),
    (["prototypes", "--similarity", "cosine"], "invalid choice: 'cosine'"),
])
def test_bad_options_exit_2_with_one_line(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["prototypes", "--help"])
    text = capsys.readouterr().out
    for option in ("--strategies", "--seeds", "--start", "--budget", "--latent", "--similarity",
                   "--width", "--tau", "--steps", "--batch-size", "--lr", "--eps", "--out",
                   "--quiet"):
        assert option in text
