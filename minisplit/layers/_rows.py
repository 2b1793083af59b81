"""A depthwise (one filter per channel) convolution as matrix products, row by row.

Channel c's maps are (H, W, R): R trailing entries per pixel (the samples, or the samples
and the d directions of the Jacobian maps of splitting), contiguous. With a kh x kw filter
F = W[c], stride (sh, sw) and zero padding (ph, pw), output row y reads the input rows
r = y sh - ph + a for the kernel rows a whose r lies inside the map, [a0, a1), and output
column x reads input column x sw - pw + b for the kernel columns b whose column lies
inside. So, with those k = a1 - a0 input rows side by side as one (k W, R) matrix (a
contiguous block of the maps),

    Z[y] = B[:, a0:a1] X[rows of y]         B (Wo, kh, W): B[x, a, x sw - pw + b] = F[a, b]

one matrix product per output row (the band matrix B holds the filter's taps where each
output column reads). Consecutive rows with the same [a0, a1), all the inside ones, go in
one batched product over a strided view of the maps (no copy). The adjoint (the gradient
with respect to the maps) and the filter's gradient are the same products transposed:

    dX[rows of y] += B[:, a0:a1]^T dZ[y]                   G[:, a0:a1] += dZ[y] X[rows of y]^T
    dF[a, b] = sum_x G[x, a, x sw - pw + b]

In NCHW order with one shifted multiply-add per tap every inner loop would be one row of W
entries; here each product is a BLAS call over long rows (docs/derivatives.md,
"DepthwiseConv2d").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowBands:
    """The geometry of one depthwise convolution of H x W maps, as band matrices.

    ``runs`` lists ``(y0, y1, a0, a1)``: output rows [y0, y1) read kernel rows [a0, a1)
    (the first input row of output row y is y sh - ph + a0); ``x``, ``b``, ``column``
    the pairs (output column, kernel column) whose input column lies inside the map.
    """

    H: int
    W: int
    Ho: int
    Wo: int
    kh: int
    kw: int
    sh: int
    ph: int
    runs: tuple
    x: np.ndarray
    b: np.ndarray
    column: np.ndarray

    @classmethod
    def of(cls, H, W, kernel, stride, padding) -> RowBands:
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        spans = [(max(0, ph - y * sh), min(kh, H + ph - y * sh)) for y in range(Ho)]
        runs, y0 = [], 0
        for y in range(1, Ho + 1):
            if y == Ho or spans[y] != spans[y0]:
                runs.append((y0, y, *spans[y0]))
                y0 = y
        x, b = np.meshgrid(np.arange(Wo), np.arange(kw), indexing="ij")
        column = x * sw - pw + b
        inside = (column >= 0) & (column < W)
        return cls(H, W, Ho, Wo, kh, kw, sh, ph, tuple(runs), x[inside], b[inside],
                   column[inside])

    def matrices(self, filters) -> np.ndarray:
        """B (C, Wo, kh, W) of the filters (C, kh, kw)."""
        B = np.zeros((len(filters), self.Wo, self.kh, self.W))
        B[:, self.x, :, self.column] = filters[:, :, self.b].transpose(2, 0, 1)  # (P, C, kh)
        return B

    def _rows(self, maps, y0, y1, a0, a1) -> np.ndarray:
        """The input rows of output rows [y0, y1), side by side: (y1 - y0, k W, R), a view
        of the contiguous maps (H, W, R) (built directly on their buffer: ``as_strided``
        costs more than the product for small maps)."""
        first = y0 * self.sh - self.ph + a0
        return np.ndarray((y1 - y0, (a1 - a0) * self.W, maps.shape[2]), maps.dtype, maps,
                          first * maps.strides[0], (self.sh * maps.strides[0], *maps.strides[1:]))

    def convolve(self, B, maps, out) -> np.ndarray:
        """``out`` (Ho, Wo, R) = the maps (H, W, R), contiguous, convolved with the filter
        whose band matrix is B (Wo, kh, W)."""
        for y0, y1, a0, a1 in self.runs:
            if a1 <= a0:  # the window lies in the padding
                out[y0:y1] = 0.0
                continue
            band = B[:, a0:a1].reshape(self.Wo, -1)  # (Wo, k W)
            np.matmul(band, self._rows(maps, y0, y1, a0, a1), out=out[y0:y1])
        return out

    def adjoint(self, B, grad, out) -> np.ndarray:
        """``out`` (H, W, R) = the adjoint of :meth:`convolve` applied to ``grad`` (Ho, Wo, R):
        each output row's gradient spread back onto the rows it read."""
        out[...] = 0.0
        for y0, y1, a0, a1 in self.runs:
            if a1 <= a0:
                continue
            band = B[:, a0:a1].reshape(self.Wo, -1)  # (Wo, k W)
            spread = np.matmul(band.T, grad[y0:y1])  # (y1 - y0, k W, R)
            for a in range(a1 - a0):
                first = y0 * self.sh - self.ph + a0 + a
                rows = slice(first, first + self.sh * (y1 - y0 - 1) + 1, self.sh)
                out[rows] += spread[:, a * self.W : (a + 1) * self.W]
        return out

    def filter_gradient(self, grad, maps) -> np.ndarray:
        """dF (kh, kw) of the filter whose output has gradient ``grad`` (Ho, Wo, R), for the
        contiguous input maps (H, W, R)."""
        G = np.zeros((self.Wo, self.kh, self.W))  # sum_y grad[y] (input rows of y)^T
        for y0, y1, a0, a1 in self.runs:
            if a1 <= a0:
                continue
            rows = self._rows(maps, y0, y1, a0, a1)  # (n, k W, R)
            part = np.matmul(grad[y0:y1], rows.transpose(0, 2, 1)).sum(axis=0)  # (Wo, k W)
            G[:, a0:a1] += part.reshape(self.Wo, a1 - a0, self.W)
        dF = np.zeros((self.kw, self.kh))  # filled column by column of the filter
        np.add.at(dF, self.b, G[self.x, :, self.column])
        return dF.T
