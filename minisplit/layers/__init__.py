"""Layers: each knows its forward, backward, R-operator, splitting matrix and surgery.

The roles (``base``): every layer is a ``Layer``; ``NeuronLayer`` has neurons to split;
``ReadingLayer`` reads the units of an earlier neuron layer linearly; ``UnitCarryingLayer``
passes them one to one with per-unit parameters (DepthwiseConv2d).
"""

from minisplit.layers.base import Layer, NeuronLayer, ReadingLayer, UnitCarryingLayer
from minisplit.layers.conv import Conv2d
from minisplit.layers.dense import Dense
from minisplit.layers.depthwise import DepthwiseConv2d
from minisplit.layers.pool import AvgPool2d, Flatten, GlobalAvgPool2d
from minisplit.layers.prototypes import Prototypes
from minisplit.layers.rbf import RBF

__all__ = [
    "Layer", "NeuronLayer", "ReadingLayer", "UnitCarryingLayer", "Dense", "RBF", "Conv2d",
    "DepthwiseConv2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Prototypes",
]
