"""Growing an interpretable prototype network by splitting prototypes (Li et al. 2018).

The network (docs/prototypes.md): a Dense encoder of the 8 x 8 digits into a latent space, a
:class:`~minisplit.layers.Prototypes` layer, a linear classifier, and a decoder head that
reconstructs the input, so that every prototype can be *seen*: its image is the decoder's
output at the prototype. This module builds that network and reads it: the prototypes'
images, the class each votes for, a split direction drawn as an image, and the *family tree*
of a growth run (which prototype split into which, along what direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minisplit._checks import check_int, check_real, check_type, make_rng
from minisplit.layers import Dense, Prototypes
from minisplit.network import Head, Network
from minisplit.splitting.matrices import splitting_indices

#: Li et al.'s weights: lambda_class, lambda_ae, lambda1, lambda2.
LI_WEIGHTS = (20.0, 1.0, 1.0, 1.0)


def prototype_network(n_in=64, n_classes=10, latent=10, hidden=32, n_prototypes=4,
                      similarity="gaussian", width=0.5, tau=0.1, weights=LI_WEIGHTS, seed=0):
    """Li et al.'s prototype network, small: encoder, prototypes, classifier, decoder head.

    Trunk: Dense(n_in -> hidden, sigmoid) -> Dense(hidden -> latent, sigmoid) ->
    Prototypes(latent, n_prototypes) -> Dense(n_prototypes -> n_classes); the decoder head
    Dense(latent -> hidden, sigmoid) -> Dense(hidden -> n_in, sigmoid) reads the latent
    (layer 1). The loss is lambda_class CE + lambda_ae R + lambda1 R1 + lambda2 R2.

    Parameters
    ----------
    n_in, n_classes, latent, hidden, n_prototypes : int
        All >= 1 (n_classes >= 2).
    similarity, width, tau
        Of the prototype layer (:class:`~minisplit.layers.Prototypes`).
    weights : tuple of 4 floats
        (lambda_class, lambda_ae, lambda1, lambda2), lambda_class > 0, the others >= 0.
    seed : int or Generator

    Returns
    -------
    Network

    Examples
    --------
    >>> net = prototype_network(n_prototypes=3, seed=0)
    >>> [type(obj).__name__ for obj in net.layers], net.heads[0].at
    (['Dense', 'Dense', 'Prototypes', 'Dense'], 1)
    """
    n_in, latent, hidden = (check_int(v, name, low=1) for v, name in
                            ((n_in, "n_in"), (latent, "latent"), (hidden, "hidden")))
    n_classes = check_int(n_classes, "n_classes", low=2)
    n_prototypes = check_int(n_prototypes, "n_prototypes", low=1)
    weights = tuple(weights) if isinstance(weights, (tuple, list)) else weights
    if not isinstance(weights, tuple) or len(weights) != 4:
        raise ValueError(f"weights must be 4 numbers (lambda_class, lambda_ae, lambda1, "
                         f"lambda2), got {weights!r}")
    lam_class = check_real(weights[0], "weights[0] (lambda_class)", low=0, low_open=True)
    lam_ae, lam1, lam2 = (check_real(w, f"weights[{i + 1}]", low=0)
                          for i, w in enumerate(weights[1:]))
    rng = make_rng(seed)
    trunk = [
        Dense(n_in, hidden, "sigmoid", seed=rng),
        Dense(hidden, latent, "sigmoid", seed=rng),
        Prototypes(latent, n_prototypes, similarity, width, lam1, lam2, tau, seed=rng),
        Dense(n_prototypes, n_classes, "identity", seed=rng),
    ]
    decoder = [Dense(latent, hidden, "sigmoid", seed=rng), Dense(hidden, n_in, "sigmoid",
                                                                 seed=rng)]
    return Network(trunk, "cross_entropy", [Head(1, decoder, lam_ae)], loss_weight=lam_class)


def prototype_layer(net) -> int:
    """The index of the (first) prototype layer of ``net``; ValueError when there is none."""
    check_type(net, "net", Network)
    for index, obj in enumerate(net.layers):
        if isinstance(obj, Prototypes):
            return index
    raise ValueError("net must have a Prototypes layer, got none")


def _decoder(net):
    layer = prototype_layer(net)
    heads = [h for h in net.heads if h.at == layer - 1]
    if not heads:
        raise ValueError(f"net must have a head reading layer {layer - 1} (the prototypes' "
                         "input) to draw prototypes as images")
    return heads[0]


def prototype_images(net) -> np.ndarray:
    """g(p_j): the decoder's output at every prototype, (m, n_in)."""
    A = net.layers[prototype_layer(net)].prototypes
    for obj in _decoder(net).layers:
        A, _ = obj.forward(A)
    return A


def direction_images(net, vectors) -> np.ndarray:
    """J_g(p_j) v_j: how prototype j's image changes along v_j (exact, R-forward), (m, n_in)."""
    P = net.layers[prototype_layer(net)].prototypes
    vectors = np.asarray(vectors, dtype=np.float64)
    A, R = P, vectors
    for obj in _decoder(net).layers:
        A, cache = obj.forward(A)
        R, _ = obj.r_forward(R, [np.zeros_like(p) for p in obj.params], cache)
    return R


def votes(net) -> np.ndarray:
    """The class each prototype votes for: the classifier weight that a *closer* prototype
    raises most (the most negative weight for squared distances, the most positive for a
    similarity that falls with the distance), (m,)."""
    layer = prototype_layer(net)
    W = net.layers[layer + 1].W  # (K, m)
    falls = net.layers[layer].similarity != "squared"
    return np.argmax(W if falls else -W, axis=0)


@dataclass(frozen=True)
class Split:
    """One split of a growth run's family tree.

    ``round`` the round that made it; ``parent`` its index before, ``children`` the two
    indices after (the parent's own, and the appended one); ``index`` the parent's splitting
    index; ``images``: the parent's image before the split, the split direction's image
    (:func:`direction_images`), the children's images after the round's training; ``votes``
    the classes the children vote for after training.
    """

    round: int
    parent: int
    children: tuple
    index: float
    parent_image: np.ndarray
    direction_image: np.ndarray
    child_images: tuple
    votes: tuple


def family_tree(result, X, y, relu_surrogate=None) -> list:
    """The splits of a prototype growth run, oldest first (:class:`Split` records).

    Parameters
    ----------
    result : GrowthResult
        From ``grow(..., keep_networks=True)`` of a splitting run.
    X, y : arrays
        The training data the run used (the directions are recomputed on the network
        before each split, exactly as the run computed them).
    """
    if result.networks is None:
        raise ValueError("result must come from grow(..., keep_networks=True)")
    layer = prototype_layer(result.net)
    splits = []
    for r, record in enumerate(result.history.rounds[1:], start=1):
        before, after = result.networks[r - 1], result.networks[r]
        if before is None or record.chosen is None or record.surgery != "split":
            continue
        values, vectors = splitting_indices(before, X, y, layer,
                                            relu_surrogate=relu_surrogate)
        n_before = before.layers[layer].n_neurons
        parents = record.chosen.get(layer, [])
        images_before = prototype_images(before)
        directions = direction_images(before, vectors)
        images_after, after_votes = prototype_images(after), votes(after)
        for k, parent in enumerate(parents):
            children = (parent, n_before + k)
            splits.append(Split(
                r, parent, children, float(values[parent]), images_before[parent],
                directions[parent], tuple(images_after[c] for c in children),
                tuple(int(after_votes[c]) for c in children),
            ))
    return splits
