"""Pruning: remove a network's least important units, the way back from a split.

A pruning method scores the units of a layer and removes the lowest-scoring ones through
:func:`minisplit.splitting.remove_units` (the inverse of a split: the units and the
reader's weights on them go). :data:`CRITERIA` holds one record per scoring rule:

``l1``   L1-prune (Li et al., 2017): the L1 norm of a unit's incoming weights, bias excluded,

             score_i = sum_{c, a, e} |W[i, c, a, e]|     (Conv2d filter i)
             score_i = sum_j |W[i, j]|                   (Dense neuron i)

``bn``   Bn-prune, network slimming (Liu et al., 2017): the batch-norm scale of a unit,

             score_i = |gamma_i|                         (a batch-normalised Dense or Conv2d)

         trained with the sparsity penalty gamma_l1 * sum |gamma| (:func:`with_gamma_l1`) and
         pruned on one threshold over all layers (:func:`bn_prune`).

How many units go. A layer of n units pruned at ratio r loses
``k = min(floor(r n), n - 1)`` units (``floor`` computed with a 1e-9 slack, so that
0.29 * 100 gives 29, not 28): never more than the fraction asked for, and never the last
unit. The k lowest scores go; ties go to the lower index.

Several layers are pruned **at once**: every layer's scores come from the input network
(Li et al.'s "independent" strategy: removing layer l's filters also removes input channels
of layer l + 1, which would change l + 1's scores; they are not recomputed). The
sensitivity analysis (:func:`sensitivity`) prunes one layer at a time, without retraining,
to choose each layer's ratio (:func:`choose_ratios`). Fine-tuning afterwards is
:func:`minisplit.train` on the pruned network (docs/pruning.md).

References
----------
H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf, "Pruning filters for efficient
ConvNets", ICLR 2017.
Z. Liu, J. Li, Z. Shen, G. Huang, S. Yan, C. Zhang, "Learning efficient convolutional
networks through network slimming", ICCV 2017.
"""

from __future__ import annotations

from minisplit.pruning.criteria import (
    CRITERIA,
    DEFAULT_RATIOS,
    Criterion,
    bn_scales,
    l1_norms,
    l1_prune,
    lowest_units,
    n_removed,
    prunable_layers,
    prune,
)
from minisplit.pruning.sensitivity import (
    Sensitivity,
    choose_ratios,
    ratios_for_size,
    sensitivity,
)
from minisplit.pruning.slimming import (
    FOLDS,
    SCOPES,
    BnPlan,
    PenalisedLoss,
    bn_layers,
    bn_plan,
    bn_prune,
    gamma_penalty,
    init_gamma,
    penalised_loss,
    with_gamma_l1,
)

__all__ = [
    "BnPlan",
    "CRITERIA",
    "Criterion",
    "DEFAULT_RATIOS",
    "FOLDS",
    "PenalisedLoss",
    "SCOPES",
    "Sensitivity",
    "bn_layers",
    "bn_plan",
    "bn_prune",
    "bn_scales",
    "choose_ratios",
    "gamma_penalty",
    "init_gamma",
    "l1_norms",
    "l1_prune",
    "lowest_units",
    "n_removed",
    "penalised_loss",
    "prunable_layers",
    "prune",
    "ratios_for_size",
    "sensitivity",
    "with_gamma_l1",
]
