"""Splitting: which way a neuron should split, and the surgery that splits it.

``matrices``    splitting matrices S_i and splitting indices (extreme eigenpairs) of a layer;
``eigen``       the eigen-solvers: dense LAPACK and batched matrix-free Lanczos;
``surgery``     the reader lookup, :func:`regrow`, split, signed split, new neurons, the
                removal of units (:func:`remove_units`, the inverse of a split), and
                how arrays shaped like the parameters follow a surgery (:func:`carry_state`);
``landscapes``  toy landscapes that make a split visible (two bumps, the split plane).

The mathematics of each neuron lives in its layer (:mod:`minisplit.layers`); this
package only composes it at the level of a network (docs/splitting.md, docs/surgery.md).
"""

from minisplit.splitting import eigen, landscapes
from minisplit.splitting.matrices import (
    SOLVERS,
    splitting_indices,
    splitting_indices_of_layers,
    splitting_matrices,
)
from minisplit.splitting.surgery import (
    add_neurons,
    carriers,
    carry_state,
    grown_parts,
    is_growable,
    reader_index,
    regrow,
    remove_units,
    signed_split,
    split,
    split_many,
)

__all__ = [
    "SOLVERS",
    "add_neurons",
    "carriers",
    "carry_state",
    "eigen",
    "grown_parts",
    "is_growable",
    "landscapes",
    "reader_index",
    "regrow",
    "remove_units",
    "signed_split",
    "split",
    "split_many",
    "splitting_indices",
    "splitting_indices_of_layers",
    "splitting_matrices",
]
