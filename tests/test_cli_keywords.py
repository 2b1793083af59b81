"""``minisplit keywords`` end to end on a tiny setting, and its refusals."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

import minisplit as ms
from minisplit import Comparison
from minisplit.cli import main

TINY = ["keywords", "--seeds", "1", "--start", "4", "--blocks", "2", "--budget", "14",
        "--steps", "3", "--batch-size", "16", "--train-subset", "64",
        "--strategies", "splitting,new_neurons,width,fixed", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("keywords") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([*TINY, "--out", str(out)])
    return status, out, printed.getvalue()


def test_the_command_writes_its_outputs_and_a_report(run):
    status, out, _ = run
    assert status == 0
    assert {p.name for p in out.iterdir()} == {
        "table.txt", "accuracy_macs.png", "confusion.png", "mfcc.png", "comparison.json",
        "report.html", ".minisplit-output.json",
    }
    comparison = Comparison.load(out / "comparison.json")
    assert set(comparison.histories) == {"splitting", "new_neurons", "width", "fixed"}
    sizes = comparison.histories["splitting"][0].column("n_neurons")
    assert sizes[0] == 12 and sizes[-1] == 14  # 4 channels in each of 3 convs, to the budget
    page = (out / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings == ["1. What was compared, and how", "2. The Hello-Edge-style table",
                        "3. Figures", "4. Verdict", "5. Settings", "The tables as printed"]
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3
    assert "<script" not in page and "http" not in page
    assert "splitting&#x27;s median test accuracy was at least as good as width&#x27;s" in page


def _printed_rows(text) -> dict:
    """{(run, channels): (widths, params, mult-adds, median)} of the printed Hello-Edge table."""
    block = text.split("Hello-Edge-style table")[1].split("\n\n")[0].splitlines()[2:]
    rows = {}
    for line in block:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0].startswith("DS-CNN S"):
            continue
        name, channels, widths, params, flops, accuracy = cells
        rows[name, int(channels)] = (widths, int(params), int(flops),
                                     float(accuracy.split(" ")[0]))
    return rows


def test_the_printed_table_is_the_json(run):
    _, out, printed = run
    comparison = Comparison.load(out / "comparison.json")
    accuracy = comparison.by_size("test_accuracy")
    params, flops = comparison.size_of("params"), comparison.size_of("flops")
    rows = _printed_rows(printed)
    expected = {(name, size) for name, cells in accuracy.items() for size in cells}
    assert set(rows) == expected
    for (name, size), (widths, p, f, median) in rows.items():
        history = comparison.histories[name][0]
        assert widths == ",".join(map(str, [r.neurons for r in history.rounds
                                            if r.n_neurons == size][-1]))
        assert (p, f) == (params[name][size], flops[name][size])
        assert median == round(accuracy[name][size].median, 3)
    assert (out / "table.txt").read_text(encoding="utf-8").strip() in printed


def test_the_reference_row_is_hello_edge_s(run):
    net = ms.dscnn(seed=0)  # width 64, 4 blocks: docs/models.md's 23,180 and 2,656,768
    line = next(ln for ln in run[2].splitlines() if ln.startswith("DS-CNN S"))
    assert f" {net.n_params} " in line and " 2656768 " in line and "not trained here" in line


@pytest.mark.parametrize("argv, words", [
    (["keywords", "--start", "4", "--blocks", "2", "--budget", "12"],
     "--budget must be larger than the starting channels in all"),
    (["keywords", "--strategies", "splitting,gradmax"], "must be distinct names from"),
    (["keywords", "--strategies", "width"], "width needs splitting"),
    (["keywords", "--fraction", "2"], "fraction"),
    (["keywords", "--train-subset", "0"], "must be a positive integer"),
])
def test_bad_options_exit_2_with_one_line(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["keywords", "--help"])
    text = capsys.readouterr().out
    for option in ("--strategies", "--seeds", "--start", "--blocks", "--budget", "--steps",
                   "--batch-size", "--lr", "--eps", "--fraction", "--train-subset", "--out",
                   "--jobs", "--quiet"):
        assert option in text
