"""How big a network is, and what one more neuron costs: neurons, parameters, FLOPs per sample.

Every number comes from the layers (``Layer.flops``, ``NeuronLayer.params_per_neuron`` and
``flops_per_neuron``, ``ReadingLayer.params_per_unit`` and ``flops_per_unit``); the
layers' input shapes come from one forward pass of a single sample.
"""

from __future__ import annotations

from minisplit._checks import check_array, check_type
from minisplit.layers.base import NeuronLayer
from minisplit.network import Network
from minisplit.splitting.surgery import carriers, is_growable, reader_index


def growable_layers(net) -> list[int]:
    """Indices of the neuron layers with a linear reader (the hidden neuron layers)."""
    check_type(net, "net", Network)
    return [
        index for index, obj in enumerate(net.layers)
        if isinstance(obj, NeuronLayer) and is_growable(net, index)
    ]


def input_shapes(net, X) -> list[tuple]:
    """The per-sample input shape of every layer, from a forward pass of ``X[:1]``."""
    check_type(net, "net", Network)
    A, shapes = check_array(X, "X")[:1], []
    net.layers[0].check_input(A)
    for obj in net.layers:
        shapes.append(A.shape[1:])
        A, _ = obj.forward(A)
    return shapes


def count_flops(net, X) -> int:
    """Multiply-adds of one forward pass, per sample, over the neuron layers.

    Dense ``n_in * n_out``, Conv2d ``c_in * kh * kw * c_out * Ho * Wo`` (Ho, Wo
    from the shape of ``X``), RBF ``n_in * n_out``: in general neurons x weights
    per neuron (bias excluded) x output positions. Activations, pooling and the
    loss are not counted.

    Examples
    --------
    >>> import numpy as np
    >>> from minisplit import mlp
    >>> count_flops(mlp([3, 4, 2], seed=0), np.zeros((5, 3)))   # 3*4 + 4*2
    20
    """
    shapes = input_shapes(net, X)
    return int(sum(obj.flops(s) for obj, s in zip(net.layers, shapes)))


def network_size(net, X, layers) -> dict:
    """``{"neurons": per layer of layers, "n_neurons": their sum, "params", "flops"}``."""
    neurons = [int(net.layers[index].n_neurons) for index in layers]
    flops = count_flops(net, X)
    return {"neurons": neurons, "n_neurons": sum(neurons), "params": net.n_params, "flops": flops}


def measure(size, kind) -> int:
    """The size of kind "neurons", "params" or "flops" from a :func:`network_size` dict."""
    return size["n_neurons" if kind == "neurons" else kind]


def unit_costs(net, X, layers, kind) -> dict:
    """What one more neuron in each layer costs in ``kind`` units: ``{layer: cost}``.

    neurons: 1; params: the neuron's own parameters plus its reader's weights on it (and
    the per-unit parameters of a depthwise layer in between, which a split copies);
    flops: the neuron's multiply-adds plus those its reader (and a depthwise layer in
    between) spends on it.
    """
    shapes = input_shapes(net, X) if kind == "flops" else None
    costs = {}
    for index in layers:
        obj = net.layers[index]
        r = reader_index(net, index)
        reader = net.layers[r]
        between = [net.layers[i] for i in carriers(net, index)]
        if kind == "neurons":
            costs[index] = 1
        elif kind == "params":
            costs[index] = obj.params_per_neuron() + sum(
                other.params_per_unit(obj.n_neurons) for other in [*between, reader])
        else:
            costs[index] = obj.flops_per_neuron(shapes[index]) + sum(
                other.flops_per_unit(shapes[i], obj.n_neurons)
                for i, other in zip([*carriers(net, index), r], [*between, reader]))
    return costs
