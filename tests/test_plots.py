"""Figures: they draw what the history holds and write image files."""

from __future__ import annotations

import numpy as np
import pytest
from _records import toy_round
from matplotlib.figure import Figure

from minisplit import datasets, mlp, plots
from minisplit.growth import Comparison, GrowthConfig, History, compare, grow

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history():
    X, y = datasets.rbf_teacher(n=32, seed=0)
    config = GrowthConfig(steps_per_round=60, budget=5, fraction=0.5, signed=True)
    return grow(mlp([1, 2, 2, 1], seed=0), X, y, config).history


@pytest.fixture(scope="module")
def comparison():
    data = datasets.load("blobs", n=40, n_classes=2)
    config = GrowthConfig(steps_per_round=30, budget=3, fraction=0.5)
    return compare(data, lambda s: mlp([2, 2, 2], loss="cross_entropy", seed=s), config,
                   strategies=("splitting", "new_neurons", "fixed"), seeds=(0, 1))


def test_plot_training_marks_every_surgery(history, tmp_path):
    path = tmp_path / "training.png"
    fig = plots.plot_training(history, path)
    assert isinstance(fig, Figure) and path.read_bytes().startswith(PNG)
    ax = fig.axes[0]
    steps, losses = history.step_losses()
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), losses)
    marked = [line.get_xdata()[0] for line in ax.lines[1:] if line.get_linestyle() == "--"]
    assert marked == history.split_steps() and len(marked) == len(history.rounds) - 1


def test_plot_spectrum_shows_every_index(history, tmp_path):
    path = tmp_path / "spectrum.png"
    fig = plots.plot_spectrum(history, path)
    assert path.read_bytes().startswith(PNG)
    drawn = sorted(v for c in fig.axes[0].collections for v in c.get_offsets()[:, 1])
    spectra = [r.spectrum for r in history.rounds] + [history.meta["stop_spectrum"]]
    expected = sorted(v for s in spectra if s for layer in s["values"] for v in layer)
    np.testing.assert_array_equal(drawn, expected)


@pytest.mark.parametrize("metric", ["test_loss", "train_accuracy"])
def test_plot_comparison_draws_one_line_per_run(comparison, tmp_path, metric):
    path = tmp_path / f"{metric}.svg"
    fig = plots.plot_comparison(comparison, path, metric=metric)
    assert path.read_text().lstrip().startswith("<?xml")
    lines = fig.axes[0].lines
    assert len(lines) == 6  # 3 strategies x 2 seeds
    last = comparison.histories["splitting"][1].rounds
    np.testing.assert_array_equal(lines[1].get_xdata(), [r.n_neurons for r in last])
    np.testing.assert_array_equal(lines[1].get_ydata(), [getattr(r, metric) for r in last])


def test_plots_without_a_path_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    h = History(meta={}, rounds=[toy_round(steps=2, losses=[1.0, 0.5], spectrum=None)])
    assert isinstance(plots.plot_training(h), Figure)
    assert isinstance(plots.plot_spectrum(h), Figure)
    assert list(tmp_path.iterdir()) == []


def test_plots_refuse_bad_input(comparison):
    with pytest.raises(TypeError, match="History"):
        plots.plot_training({"rounds": []})
    with pytest.raises(ValueError, match="metric"):
        plots.plot_comparison(comparison, metric="flops")
    with pytest.raises(TypeError, match="Comparison"):
        plots.plot_comparison(Comparison("x", [0], {}).histories)


def test_plot_sensitivity_draws_each_layer_and_the_baseline(tmp_path):
    from minisplit import pruning, testnets

    net, X, y = testnets.conv_conv(loss="cross_entropy", n=12, channels1=4, channels2=3)
    result = pruning.sensitivity(net, X, y, ratios=(0.25, 0.5, 0.75))
    path = tmp_path / "sensitivity.png"
    fig = plots.plot_sensitivity(result, path)
    assert path.read_bytes().startswith(PNG)
    lines = fig.axes[0].lines
    assert len(lines) == 3  # layers 0 and 1, then the unpruned line
    for line, layer in zip(lines, (0, 1)):
        np.testing.assert_array_equal(line.get_xdata(), result.ratios)
        np.testing.assert_array_equal(line.get_ydata(), result.curves[layer])
    np.testing.assert_array_equal(lines[2].get_ydata(), [result.baseline] * 2)
    assert fig.axes[0].get_ylabel() == "validation accuracy"
    with pytest.raises(TypeError, match="result must be a Sensitivity"):
        plots.plot_sensitivity(result.curves)


def test_plot_gamma_histogram_counts_each_layer_on_shared_bins(tmp_path):
    from matplotlib.patches import StepPatch

    from minisplit import pruning, testnets

    net, _, _ = testnets.conv_bn(channels1=4, channels2=3)
    plan = pruning.bn_plan(net, 0.5)
    path = tmp_path / "gamma.png"
    fig = plots.plot_gamma_histogram(net, path, threshold=plan.threshold, bins=5)
    assert path.read_bytes().startswith(PNG)
    ax = fig.axes[0]
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert [p.get_label() for p in steps] == ["layer 0 (4 channels)", "layer 1 (3 channels)"]
    largest = max(np.abs(net.layers[i].gamma).max() for i in (0, 1))
    for patch, layer in zip(steps, (0, 1)):
        counts, edges, _ = patch.get_data()
        np.testing.assert_allclose(edges, np.linspace(0.0, largest, 6), rtol=1e-15)
        expected, _ = np.histogram(np.abs(net.layers[layer].gamma), bins=edges)
        np.testing.assert_array_equal(counts, expected)
        assert counts.sum() == net.layers[layer].n_neurons
    threshold = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(threshold) == 1 and threshold[0].get_xdata()[0] == plan.threshold
    signed = plots.plot_gamma_histogram(pruning.init_gamma(net, -0.5), absolute=False)
    assert signed.axes[0].get_xlabel() == "gamma" and not signed.axes[0].lines


def test_plot_gamma_histogram_refusals():
    from minisplit import testnets

    with pytest.raises(TypeError, match="net must be a Network"):
        plots.plot_gamma_histogram([1.0])
    with pytest.raises(ValueError, match="net must have a batch-normalised layer"):
        plots.plot_gamma_histogram(testnets.dense()[0])
    net = testnets.dense_bn()[0]
    with pytest.raises(ValueError, match="threshold must be None with absolute=False"):
        plots.plot_gamma_histogram(net, threshold=0.5, absolute=False)
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        plots.plot_gamma_histogram(net, bins=0)
