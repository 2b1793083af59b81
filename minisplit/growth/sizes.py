"""How big a network is: neurons of the grown layers, parameters, FLOPs per sample."""

from __future__ import annotations

import numpy as np

from minisplit.splitting import add_neurons, reader_index


def growable_layers(net) -> list[int]:
    """Indices of the neuron layers with a linear reader (the hidden neuron layers)."""
    out = []
    for index, layer in enumerate(net.layers):
        if hasattr(layer, "neuron_params"):
            try:
                reader_index(net, index)
            except ValueError:  # the output layer, or a layer read non-linearly
                continue
            out.append(index)
    return out


def count_flops(net, X) -> int:
    """Multiply-adds of one forward pass, per sample, over the neuron layers.

    Dense ``n_in * n_out``, Conv2d ``c_in * kh * kw * c_out * Ho * Wo`` (Ho, Wo
    from the shape of ``X``), RBF ``n_in * n_out``: in general neurons x weights
    per neuron (bias excluded) x output positions. Activations, pooling and the
    loss are not counted.

    Examples
    --------
    >>> from minisplit import mlp
    >>> count_flops(mlp([3, 4, 2], seed=0), np.zeros((5, 3)))   # 3*4 + 4*2
    20
    """
    A, total = np.asarray(X)[:1], 0
    for layer in net.layers:
        A, _ = layer.forward(A)
        if hasattr(layer, "neuron_params"):
            weights = layer.neuron_dim - (1 if "b" in layer.param_names else 0)
            total += layer.n_neurons * weights * (A[0].size // layer.n_neurons)
    return int(total)


def network_size(net, X, layers) -> dict:
    """``{"neurons": per layer of layers, "n_neurons": their sum, "params", "flops"}``."""
    neurons = [int(net.layers[index].n_neurons) for index in layers]
    flops = count_flops(net, X)
    return {"neurons": neurons, "n_neurons": sum(neurons), "params": net.n_params, "flops": flops}


def measure(size, kind) -> int:
    """The size of kind "neurons", "params" or "flops" from a :func:`network_size` dict."""
    return size["n_neurons" if kind == "neurons" else kind]


def unit_costs(net, X, layers, kind) -> dict:
    """What one more neuron in each layer costs in ``kind`` units (measured on a grown copy)."""
    base = measure(network_size(net, X, layers), kind)
    costs = {}
    for index in layers:
        obj = net.layers[index]
        W_in = net.layers[reader_index(net, index)].input_weights(obj.n_neurons)
        one = add_neurons(net, index, np.zeros((1, obj.neuron_dim)), np.zeros_like(W_in[:1]))
        costs[index] = measure(network_size(one, X, layers), kind) - base
    return costs
