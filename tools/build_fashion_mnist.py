"""Build minisplit/data/fashion_mnist.npz: a class-balanced Fashion-MNIST subset.

Development time only: the package ships the result and never runs this. Needs NumPy and the
standard library, and the original idx files, e.g. from Debian's ``dataset-fashion-mnist``
package (``apt-get install dataset-fashion-mnist`` puts them in /usr/share/datasets/fashion-mnist).

Command line (the shipped file was made with the defaults, from the repository root)::

    python tools/build_fashion_mnist.py [--source DIR] [--out FILE] [--seed N]

What it does, deterministically for a given seed:

1. reads the four gzipped idx files (``train-images-idx3-ubyte.gz`` and its labels, 60,000
   images; ``t10k-images-idx3-ubyte.gz`` and its labels, 10,000 images), checking their magic
   numbers and sizes;
2. draws, with ``np.random.default_rng(seed)``, 600 training images of each class from the
   training file and then 100 test images of each class from the test file, without
   replacement, and keeps them in their original file order (sorted indices);
3. mean-pools each 28x28 image over 2x2 blocks to 14x14, rounding the mean of the four
   uint8 pixels to the nearest integer, halves up: ``(a + b + c + d + 2) // 4``;
4. saves uint8 images and labels, and the int32 indices of the chosen images in the original
   files, with ``np.savez_compressed`` (arrays only, so ``allow_pickle=False`` reads it).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

SOURCE = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parent.parent / "minisplit" / "data" / "fashion_mnist.npz"
TRAIN_PER_CLASS, TEST_PER_CLASS = 600, 100
N_CLASSES, SIDE = 10, 28
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # idx: 0x00000803 (3-d uint8), 0x00000801 (1-d uint8)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of a gzipped idx file: images (n, 28, 28) or labels (n,)."""
    data = gzip.decompress(path.read_bytes())
    header = np.frombuffer(data[:4], dtype=">u4")[0]
    if header != magic:
        raise ValueError(f"{path} must start with idx magic number {magic}, got {header}")
    ndim = magic - 2048
    shape = tuple(int(d) for d in np.frombuffer(data[4 : 4 + 4 * ndim], dtype=">u4"))
    body = np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} must hold {shape} bytes after its header, got {body.size}")
    return body.reshape(shape)


def balanced_choice(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` rows of each class 0..9, drawn without replacement."""
    chosen = [rng.choice(np.flatnonzero(labels == k), size=per_class, replace=False)
              for k in range(N_CLASSES)]
    return np.sort(np.concatenate(chosen))  # (N_CLASSES * per_class,)


def mean_pool(images: np.ndarray) -> np.ndarray:
    """2x2 mean pooling of uint8 images (n, 2h, 2w) -> (n, h, w), rounded half up."""
    n, height, width = images.shape
    blocks = images.reshape(n, height // 2, 2, width // 2, 2).astype(np.uint16)
    return ((blocks.sum(axis=(2, 4)) + 2) // 4).astype(np.uint8)  # (n, h, w)


def build(train_images, train_labels, test_images, test_labels, seed=0,
          train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS) -> dict:
    """The arrays of the subset, named as in the shipped file."""
    rng = np.random.default_rng(seed)
    train = balanced_choice(train_labels, train_per_class, rng)
    test = balanced_choice(test_labels, test_per_class, rng)
    return {
        "X_train": mean_pool(train_images[train]),
        "y_train": train_labels[train],
        "X_test": mean_pool(test_images[test]),
        "y_test": test_labels[test],
        "train_index": train.astype(np.int32),
        "test_index": test.astype(np.int32),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE,
                        help=f"folder with the four gzipped idx files (default {SOURCE})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the .npz to write (default {OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    args = parser.parse_args(argv)
    arrays = build(
        read_idx(args.source / "train-images-idx3-ubyte.gz", IMAGES_MAGIC),
        read_idx(args.source / "train-labels-idx1-ubyte.gz", LABELS_MAGIC),
        read_idx(args.source / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC),
        read_idx(args.source / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC),
        seed=args.seed,
    )
    np.savez_compressed(args.out, **arrays)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out}: {args.out.stat().st_size:,} bytes, SHA-256 {digest}")


if __name__ == "__main__":
    main()
