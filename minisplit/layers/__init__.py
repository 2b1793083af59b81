"""Layers: each knows its forward, backward and R-operator (see ``base``)."""

from minisplit.layers.base import Layer
from minisplit.layers.conv import Conv2d
from minisplit.layers.dense import Dense
from minisplit.layers.pool import AvgPool2d, Flatten
from minisplit.layers.rbf import RBF

__all__ = ["Layer", "Dense", "RBF", "Conv2d", "AvgPool2d", "Flatten"]
