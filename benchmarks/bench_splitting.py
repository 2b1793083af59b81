"""Benchmark forming splitting matrices and finding splitting indices.

Three same-run measurements (see benchmarks/README.md):

1. Forming every S_i of a Dense layer with ``layer.splitting_matrices(dA, cache)``
   (N = 4096 samples, fan-in 128, n = 128 neurons, d = 129). Achieved flop rate,
   counting the upper-triangle kernel's real work ``N n d (d + 1)``, over the flop
   rate of a plain float64 2000 x 2000 matrix product timed in the same run.
   Target >= 0.5. Also: the rate of the bare product the kernel reduces to
   ((n x N) @ (N x T), T = d(d+1)/2, no outer products built), and the peak memory
   traced by ``tracemalloc`` during the call against the n d^2 * 8 bytes of S itself.
2. Smallest eigenpairs of a Dense layer with fan-in 1024 (n = 64, N = 2048) on data from
   a random teacher: ``ms.splitting_indices(solver="matrix_free")`` against
   ``solver="dense"`` (form S, then ``eigh``). Target: >= 5x faster, with the largest
   relative eigenvalue difference <= 1e-6.
3. The same comparison for a Conv2d layer (16 -> 32 channels, 3 x 3, 16 x 16 images,
   N = 256), reported without a target.

Timings: one warm-up call, then ``--repeats`` rounds with the compared functions
interleaved; ratios are of best times (medians printed beside them). The dense
eigen-solve of section 2 is expensive (64 eigh of 1025 x 1025), so it runs
``--eig-repeats`` times without warm-up. No assertion is made on any time.

Run ``python benchmarks/bench_splitting.py --help`` for the sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from bench_core import blas_summary, time_interleaved

import minisplit as ms

RATE_TARGET = 0.5
SPEEDUP_TARGET = 5.0
AGREEMENT_TARGET = 1e-6


# ---- timing (the interleaving and the BLAS report are bench_core's) ----------------------


def best_median(times) -> tuple[float, float]:
    return min(times), statistics.median(times)


def print_time(name: str, times) -> None:
    best, median = best_median(times)
    print(f"  {name:<44s} best {best * 1e3:9.1f} ms   median {median * 1e3:9.1f} ms")


def verdict(value: float, target: float, at_least: bool = True) -> str:
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    return f"target {sign} {target:g}: {'met' if met else 'MISSED'}"


class CountingMatvec:
    """Wraps ``layer.splitting_operator`` on one layer instance to count the products S v
    (and time them; the set-up the operator does once is timed apart, as ``setup_seconds``)."""

    def __init__(self, layer):
        self.layer, self.calls, self.seconds, self.setup_seconds = layer, 0, 0.0, 0.0
        self.method = layer.splitting_operator

    def __enter__(self):
        def counted_operator(*args, **kwargs):
            start = time.perf_counter()
            product = self.method(*args, **kwargs)
            self.setup_seconds += time.perf_counter() - start

            def counted(V):
                start = time.perf_counter()
                out = product(V)
                self.seconds += time.perf_counter() - start
                self.calls += 1
                return out

            return counted

        self.layer.splitting_operator = counted_operator  # an instance attribute shadows it
        return self

    def __exit__(self, *exc):
        del self.layer.splitting_operator


# ---- 1: forming S of a Dense layer ------------------------------------------------------


def bench_form(args, rng) -> tuple[float, float]:
    N, n_in, n = args.form_samples, args.form_fan_in, args.form_width
    d = n_in + 1
    net = ms.Network(
        [ms.Dense(n_in, n, "tanh", seed=rng), ms.Dense(n, 4, "identity", seed=rng)], "mse"
    )
    X = rng.standard_normal((N, n_in))  # (N, n_in)
    y = rng.standard_normal((N, 4))  # (N, 4)
    bp = net.backprop(X, y)
    layer, dA, cache = net.layers[0], bp.douts[0], bp.caches[0]
    T = d * (d + 1) // 2
    flops = N * n * d * (d + 1)  # 2 N n T: the upper-triangle kernel's real work
    nominal = 2 * N * n * d * d
    side = args.matmul_size
    A = rng.standard_normal((side, side))  # (side, side)
    B = rng.standard_normal((side, side))  # (side, side)
    C = rng.standard_normal((n, N))  # (n, N) stands in for (g f'')^T
    P = rng.standard_normal((N, T))  # (N, T) stands in for the outer products
    print(
        f"\n1. Dense({n_in}, {n}) tanh, N = {N}: d = {d}, T = d(d+1)/2 = {T}; "
        f"flops N n d(d+1) = {flops / 1e9:.2f} G (nominal 2 N n d^2 = {nominal / 1e9:.2f} G)"
    )
    times = time_interleaved(
        {
            "layer.splitting_matrices(dA, cache)": lambda: layer.splitting_matrices(dA, cache),
            f"plain matmul {side} x {side}": lambda: A @ B,
            "bare product (n x N) @ (N x T)": lambda: C @ P,
        },
        args.repeats,
    )
    for name, ts in times.items():
        print_time(name, ts)
    t_form, t_form_median = best_median(times["layer.splitting_matrices(dA, cache)"])
    t_mm, t_mm_median = best_median(times[f"plain matmul {side} x {side}"])
    t_bare, _ = best_median(times["bare product (n x N) @ (N x T)"])
    rate_mm = 2 * side**3 / t_mm
    rate = flops / t_form
    relative = rate / rate_mm
    median_relative = (flops / t_form_median) / (2 * side**3 / t_mm_median)
    print(f"  plain matmul rate                 {rate_mm / 1e9:7.1f} GFLOP/s  (the reference)")
    print(
        f"  splitting_matrices rate           {rate / 1e9:7.1f} GFLOP/s  "
        f"(nominal-flop rate {nominal / t_form / 1e9:.1f})"
    )
    print(f"  bare product rate                 {flops / t_bare / 1e9:7.1f} GFLOP/s")
    print(
        f"  rate / plain matmul: best {relative:.3f}, median {median_relative:.3f}   "
        f"{verdict(relative, RATE_TARGET)}"
    )
    print(f"  bare product / plain matmul: {flops / t_bare / rate_mm:.2f} (the shape's ceiling)")

    tracemalloc.start()  # traces numpy's allocations made from here on
    layer.splitting_matrices(dA, cache)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    s_bytes = n * d * d * 8
    print(
        f"  peak traced memory {peak / 2**20:.1f} MiB = {peak / s_bytes:.2f} x n d^2 * 8 bytes "
        f"({s_bytes / 2**20:.1f} MiB, S itself)"
    )
    return relative, peak / s_bytes


# ---- 2 and 3: matrix-free against dense eigenpairs -----------------------------------------


def compare_solvers(title, net, X, y, layer_index, args, target) -> tuple[float, float]:
    """Time splitting_indices(solver=...) both ways; print the agreement and a breakdown."""
    layer = net.layers[layer_index]
    n, d = layer.n_neurons, layer.neuron_dim
    print(f"\n{title}: n = {n} neurons, d = {d}")

    def matrix_free():
        return ms.splitting_indices(net, X, y, layer_index, solver="matrix_free")

    def dense():
        return ms.splitting_indices(net, X, y, layer_index, solver="dense")

    mf_values, mf_vectors = matrix_free()  # the warm-up, kept for the agreement check
    t_mf = []
    t_dense = []
    for round_ in range(max(args.repeats_mf, args.eig_repeats)):
        if round_ < args.repeats_mf:
            start = time.perf_counter()
            matrix_free()
            t_mf.append(time.perf_counter() - start)
        if round_ < args.eig_repeats:
            start = time.perf_counter()
            dense_values, dense_vectors = dense()
            t_dense.append(time.perf_counter() - start)
    print_time('splitting_indices(solver="matrix_free")', t_mf)
    print_time('splitting_indices(solver="dense")', t_dense)
    speedup = min(t_dense) / min(t_mf)
    print(
        f"  speed-up dense / matrix_free: best {speedup:.1f}x, "
        f"median {statistics.median(t_dense) / statistics.median(t_mf):.1f}x   "
        + (verdict(speedup, target) if target is not None else "(reported, no target)")
    )

    scale = np.abs(dense_values)
    relative = np.abs(mf_values - dense_values) / np.maximum(scale, 1e-300)
    worst = float(relative.max())
    cosine = np.abs(np.einsum("nd,nd->n", mf_vectors, dense_vectors))
    print(
        f"  max relative eigenvalue difference {worst:.1e}   "
        f"{verdict(worst, AGREEMENT_TARGET, at_least=False)}"
    )
    print(
        f"  lambda_min range [{dense_values.min():.3e}, {dense_values.max():.3e}]; "
        f"min |cos(v_mf, v_dense)| = {cosine.min():.10f}"
    )

    # where the time goes (each line from one run; "by difference" lines subtract those)
    start = time.perf_counter()
    bp = net.backprop(X, y)
    t_bp = time.perf_counter() - start
    dA, cache = bp.douts[layer_index], bp.caches[layer_index]
    start = time.perf_counter()
    layer.splitting_matrices(dA, cache)
    t_form = time.perf_counter() - start
    with CountingMatvec(layer) as counter:
        start = time.perf_counter()
        matrix_free()
        t_counted = time.perf_counter() - start
    print("  breakdown:")
    print(f"    net.backprop (in both)                      {t_bp * 1e3:10.1f} ms")
    print(f"    dense: layer.splitting_matrices             {t_form * 1e3:10.1f} ms")
    print(
        f"    dense: eigh, by difference                  "
        f"{(min(t_dense) - t_form - t_bp) * 1e3:10.1f} ms"
    )
    print(
        f"    matrix_free: {counter.calls} Lanczos steps, one product S v each: "
        f"{counter.seconds / counter.calls * 1e3:.1f} ms x {counter.calls} = "
        f"{counter.seconds * 1e3:.1f} ms of {t_counted * 1e3:.1f} ms; their set-up once "
        f"(curvature coefficients) {counter.setup_seconds * 1e3:.1f} ms; the rest "
        f"(re-orthogonalisation, Ritz values, backprop) "
        f"{(t_counted - counter.seconds - counter.setup_seconds) * 1e3:.1f} ms"
    )
    return speedup, worst


def bench_dense_eigen(args, rng) -> tuple[float, float]:
    N, n_in, n = args.eig_samples, args.eig_fan_in, args.eig_width
    X, y = ms.datasets.teacher_student(
        n=N, n_in=n_in, teacher_width=16, n_out=4, seed=int(rng.integers(2**31))
    )
    net = ms.Network(
        [ms.Dense(n_in, n, "tanh", seed=rng), ms.Dense(n, 4, "identity", seed=rng)], "mse"
    )
    title = f"2. Dense({n_in}, {n}) tanh on teacher_student data, N = {N}"
    return compare_solvers(title, net, X, y, 0, args, SPEEDUP_TARGET)


def conv_net(c_in, c_out, kernel, side, rng):
    """Conv2d (padding keeps the size) -> AvgPool2d(2) -> Flatten -> Dense to 4 outputs."""
    return ms.Network(
        [
            ms.Conv2d(c_in, c_out, kernel, padding=kernel // 2, activation="tanh", seed=rng),
            ms.AvgPool2d(2),
            ms.Flatten(),
            ms.Dense(c_out * (side // 2) ** 2, 4, "identity", seed=rng),
        ],
        "mse",
    )


def bench_conv_eigen(args, rng) -> tuple[float, float]:
    N, c_in, c_out, k, side = (
        args.conv_batch,
        args.conv_in,
        args.conv_out,
        args.conv_kernel,
        args.conv_size,
    )
    X = rng.standard_normal((N, c_in, side, side))  # (N, c_in, H, W)
    y = conv_net(c_in, c_out, k, side, rng).forward(X)  # (N, 4) from a random teacher
    net = conv_net(c_in, c_out, k, side, rng)
    title = (
        f"3. Conv2d({c_in}, {c_out}, {k}x{k}, padding {k // 2}) tanh -> AvgPool2d(2) -> "
        f"Flatten -> Dense, {side}x{side} images from a random teacher, N = {N} "
        f"({N * side * side} sample-positions)"
    )
    return compare_solvers(title, net, X, y, 0, args, None)


# ---- command line ---------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--form-samples", type=int, default=4096, help="section 1: N (default 4096)")
    add("--form-fan-in", type=int, default=128, help="section 1: fan-in (default 128)")
    add("--form-width", type=int, default=128, help="section 1: neurons n (default 128)")
    add("--matmul-size", type=int, default=2000, help="reference square matmul (default 2000)")
    add("--repeats", type=int, default=7, help="section 1: timed rounds (default 7)")
    add("--eig-samples", type=int, default=2048, help="section 2: N (default 2048)")
    add("--eig-fan-in", type=int, default=1024, help="section 2: fan-in (default 1024)")
    add("--eig-width", type=int, default=64, help="section 2: neurons n (default 64)")
    add("--conv-batch", type=int, default=256, help="section 3: images N (default 256)")
    add("--conv-in", type=int, default=16, help="section 3: input channels (default 16)")
    add("--conv-out", type=int, default=32, help="section 3: neurons c_out (default 32)")
    add("--conv-kernel", type=int, default=3, help="section 3: odd kernel size (default 3)")
    add("--conv-size", type=int, default=16, help="section 3: even image side (default 16)")
    add("--repeats-mf", type=int, default=3, help="sections 2-3: matrix-free rounds (default 3)")
    add("--eig-repeats", type=int, default=1, help="sections 2-3: dense rounds (default 1)")
    add("--seed", type=int, default=0, help="random seed (default 0)")
    add(
        "--sections",
        type=lambda s: sorted({int(v) for v in s.split(",")}),
        default=[1, 2, 3],
        help="which sections to run, comma separated (default 1,2,3)",
    )
    args = parser.parse_args(argv)
    if not set(args.sections) <= {1, 2, 3}:
        parser.error(f"--sections must be taken from 1,2,3, got {args.sections}")
    for name in ("repeats", "repeats_mf", "eig_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.conv_kernel % 2 == 0 or args.conv_size % 2:
        parser.error("--conv-kernel must be odd and --conv-size even")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    for line in blas_summary():
        print(line)
    results = {}
    for section, bench in ((1, bench_form), (2, bench_dense_eigen), (3, bench_conv_eigen)):
        if section in args.sections:  # each section its own stream: same data when run alone
            results[section] = bench(args, np.random.default_rng([args.seed, section]))
    print("\n== summary")
    if 1 in results:
        rate, memory = results[1]
        print(f"  1. S rate / plain matmul           {rate:6.3f}   (target >= {RATE_TARGET})")
        print(f"     peak memory / (n d^2 * 8 bytes)  {memory:6.2f}")
    if 2 in results:
        speedup, agreement = results[2]
        print(
            f"  2. Dense matrix-free speed-up       {speedup:6.1f}x  (target >= "
            f"{SPEEDUP_TARGET:g}x), eigenvalues agree to {agreement:.1e} "
            f"(target <= {AGREEMENT_TARGET:g})"
        )
    if 3 in results:
        speedup, agreement = results[3]
        print(
            f"  3. Conv2d matrix-free speed-up      {speedup:6.1f}x  (reported), "
            f"eigenvalues agree to {agreement:.1e}"
        )


if __name__ == "__main__":
    main()
