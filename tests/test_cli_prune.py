"""``minisplit prune`` end to end on a tiny setting, and its refusals."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from minisplit import Comparison
from minisplit.cli import main

STRATEGIES = ["splitting", "l1_prune", "bn_prune", "width"]
TINY = ["prune", "--seeds", "1", "--start", "2,3", "--budget", "7", "--steps", "10",
        "--samples", "200", "--strategies", ",".join(STRATEGIES), "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prune") / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main([*TINY, "--out", str(out)])
    return status, out, stdout.getvalue()


def test_the_command_writes_its_outputs_and_a_report(run):
    status, out, _ = run
    assert status == 0
    assert {p.name for p in out.iterdir()} == {
        "table.txt", "comparison.json", "accuracy_params.png", "accuracy_flops.png",
        "gamma.png", "sensitivity.png", "report.html", ".minisplit-output.json",
    }
    comparison = Comparison.load(out / "comparison.json")
    assert set(comparison.histories) == set(STRATEGIES)
    sizes = comparison.histories["splitting"][0].column("n_neurons")
    assert sizes[0] == 5 and sizes[-1] == 7
    for name in ("l1_prune", "bn_prune"):  # the wide network is twice splitting's final size
        assert sum(comparison.histories[name][0].meta["wide"]["neurons"]) == 14
    page = (out / "report.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headings == ["1. What was compared, and how",
                        "2. Accuracy against parameters and FLOPs",
                        "3. Inside the pruning references", "4. Verdict", "5. Settings",
                        "The tables as printed"]
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4
    assert "<script" not in page and "http" not in page
    # the wide networks trained again for the figures are the references' own
    assert page.count("(the same network)") == 2 and "NOT the same" not in page


def _printed(text, title):
    """{column: {size: float}} of the table under the line starting with ``title``."""
    lines = text.split(title, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    names = lines[0].split()[1:]
    table = {name: {} for name in names}
    for line in lines[1:]:
        size, *cells = line.split()
        for name, cell in zip(names, cells):
            if cell != "-":
                table[name][int(size)] = float(cell)
    return table


def test_the_printed_tables_are_the_json_numbers(run):
    _, out, stdout = run
    comparison = Comparison.load(out / "comparison.json")
    assert (out / "table.txt").read_text(encoding="utf-8").strip() in stdout
    accuracy = _printed(stdout, "test accuracy after each round")
    expected = {name: {n: float(f"{c.median:.4g}") for n, c in cells.items()}
                for name, cells in comparison.by_size("test_accuracy").items()}
    assert accuracy == expected
    for kind, title in (("params", "parameters of those"), ("flops", "FLOPs (multiply")):
        cost = _printed(stdout, title)
        assert cost == {name: {n: float(f"{v:.6g}") for n, v in cells.items()}
                        for name, cells in comparison.size_of(kind).items()}
    # the same number of channels, different costs: the point of the figures
    assert len({cells[7] for cells in comparison.size_of("params").values()}) > 1
    assert "Wrote accuracy_flops.png" in stdout


@pytest.mark.parametrize("argv, words", [
    (["prune", "--start", "4,4", "--budget", "8"], "--budget must be larger than the start"),
    (["prune", "--strategies", "l1_prune,width"], "l1_prune needs splitting"),
    (["prune", "--strategies", "splitting,gradmax"], "must be distinct names from"),
    (["prune", "--start", "4,0"], "must be comma-separated positive channel counts"),
    (["prune", "--task", "spirals"], "invalid choice: 'spirals'"),
    (["prune", "--eps", "0"], "eps"),
])
def test_bad_options_exit_2_with_one_line(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_an_out_folder_holding_other_files_is_refused(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.txt" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    text = capsys.readouterr().out
    for option in ("--task", "--strategies", "--seeds", "--start", "--budget", "--steps",
                   "--batch-size", "--lr", "--eps", "--fraction", "--samples", "--out",
                   "--jobs", "--quiet"):
        assert option in text
