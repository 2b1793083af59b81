"""Benchmark the core derivatives against the bare matrix products they are made of.

Three same-run ratios (see benchmarks/README.md):

1. MLP training step (``net.loss_and_grad``) / the bare matrix products of the same
   shapes: forward ``X @ W.T`` per layer, backward ``dZ.T @ X`` per layer and
   ``dZ @ W`` for every layer but the first. Target <= 1.3.
2. Conv2d forward + backward through the layer's public methods / the bare im2col
   products of the same flops: ``cols @ W.T``, ``dZ.T @ cols``, ``dZ @ W``. Target <= 3.
3. MLP ``net.hvp`` / ``net.loss_and_grad`` (reported; about 2-3 expected).

Each timing is taken after one warm-up call, ``--repeats`` times, the compared
functions interleaved (A, B, A, B, ...) so that load from other processes hits
both; the ratio is of the best times, the median ratio is printed next to it.
No assertion is made on any time: this script reports, it does not test.

Run ``python benchmarks/bench_core.py --help`` for the sizes.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import platform
import resource
import statistics
import time

import numpy as np

import minisplit as ms

MLP_TARGET = 1.3
CONV_TARGET = 3.0


# ---- environment ------------------------------------------------------------------


def _openblas_runtime() -> str | None:
    """Core type and thread count reported by the OpenBLAS bundled with NumPy, if any."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    for path in glob.glob(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            try:
                corename = getattr(lib, f"{prefix}_get_corename{suffix}")
                threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            return f"core {corename().decode()}, threads: {threads()}"
    return None


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (a process pool's
    workers, counted once they have been joined): the CPU time of a run with ``--jobs``."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def blas_summary() -> list[str]:
    """A few lines saying which BLAS NumPy uses and how it is configured."""
    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs visible"
    ]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        for pool in threadpool_info():
            lines.append(
                f"threadpoolctl: {pool.get('internal_api')} {pool.get('version')} "
                f"core {pool.get('architecture')}, threads: {pool.get('num_threads')}"
            )
    else:
        try:
            config = np.show_config(mode="dicts")
            blas = config["Build Dependencies"]["blas"]
            lines.append(f"numpy blas: {blas.get('name')} {blas.get('version')}")
            if "openblas configuration" in blas:
                lines.append(f"  build: {blas['openblas configuration']}")
        except (TypeError, KeyError):
            lines.append("numpy blas: (np.show_config(mode='dicts') unavailable)")
        runtime = _openblas_runtime()
        if runtime is not None:
            lines.append(f"  runtime: {runtime}")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        lines.append(f"{name}={os.environ.get(name, '(unset)')}")
    lines.append(
        "note: OPENBLAS_CORETYPE may be set on this machine, which slows NumPy; every ratio "
        "below compares two timings from this same run, so the ratios stay meaningful."
    )
    return lines


# ---- timing -------------------------------------------------------------------------


def time_interleaved(functions: dict, repeats: int) -> dict:
    """Wall times of each function: one warm-up each, then ``repeats`` interleaved rounds.

    Returns ``{name: list of seconds}``.
    """
    for fn in functions.values():
        fn()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(title: str, times: dict, numerator: str, denominator: str, target=None) -> float:
    """Print best and median times of two entries and their ratio; return the best ratio."""
    best = {name: min(ts) for name, ts in times.items()}
    median = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = best[numerator] / best[denominator]
    median_ratio = median[numerator] / median[denominator]
    print(f"\n== {title}")
    for name in (numerator, denominator):
        print(
            f"  {name:<34s} best {best[name] * 1e3:9.2f} ms   "
            f"median {median[name] * 1e3:9.2f} ms"
        )
    verdict = ""
    if target is not None:
        verdict = f"   target <= {target:.1f}: {'met' if ratio <= target else 'MISSED'}"
    print(f"  ratio (best) {ratio:.2f}   ratio (median) {median_ratio:.2f}{verdict}")
    return ratio


# ---- 1 and 3: the MLP ------------------------------------------------------------------


def mlp_problem(sizes, batch, rng):
    """A tanh / cross-entropy MLP, a batch of inputs and integer labels."""
    net = ms.mlp(sizes, activation="tanh", loss="cross_entropy", seed=rng)
    X = rng.standard_normal((batch, sizes[0]))  # (N, n_in)
    y = rng.integers(0, sizes[-1], size=batch)  # (N,)
    return net, X, y


def bare_mlp_products(net, X, rng):
    """A function doing only the matrix products one training step of ``net`` needs."""
    Ws = [layer.W for layer in net.layers]
    inputs = [X] + [rng.standard_normal((X.shape[0], W.shape[1])) for W in Ws[1:]]
    dZs = [rng.standard_normal((X.shape[0], W.shape[0])) for W in Ws]

    def products():
        for A, W in zip(inputs, Ws):
            A @ W.T  # (N, n_out) forward
        for index, (A, W, dZ) in enumerate(zip(inputs, Ws, dZs)):
            dZ.T @ A  # (n_out, n_in) dW
            if index > 0:
                dZ @ W  # (N, n_in) dX, not needed below the first layer

    return products


def bench_mlp(args, rng) -> tuple[float, float]:
    net, X, y = mlp_problem(args.sizes, args.batch, rng)
    V = [rng.standard_normal(p.shape) for p in net.params]
    print(
        f"\nMLP {'-'.join(map(str, args.sizes))}, tanh, cross-entropy, batch {args.batch}, "
        f"{net.n_params} parameters"
    )
    times = time_interleaved(
        {
            "net.loss_and_grad": lambda: net.loss_and_grad(X, y),
            "bare matrix products": bare_mlp_products(net, X, rng),
            "net.hvp": lambda: net.hvp(X, y, V),
        },
        args.repeats,
    )
    step = report(
        "MLP training step / bare products",
        times,
        "net.loss_and_grad",
        "bare matrix products",
        MLP_TARGET,
    )
    hvp = report("MLP hvp / loss_and_grad (expect ~2-3)", times, "net.hvp", "net.loss_and_grad")
    return step, hvp


# ---- 2: Conv2d -----------------------------------------------------------------------------


def bench_conv(args, rng) -> float:
    N, C, K, S, k = args.conv_batch, args.conv_in, args.conv_out, args.conv_size, 3
    layer = ms.Conv2d(C, K, k, padding=1, activation=args.conv_activation, seed=rng)
    X = rng.standard_normal((N, C, S, S))  # (N, C, H, W)
    A, cache = layer.forward(X)
    dA = rng.standard_normal(A.shape)  # (N, K, H, W) with padding 1
    P = A.shape[2] * A.shape[3]
    cols = rng.standard_normal((N * P, C * k * k))  # (N P, C k k) the im2col matrix
    W2 = layer.W.reshape(K, C * k * k)  # (K, C k k)
    dZ = rng.standard_normal((N * P, K))  # (N P, K)
    print(
        f"\nConv2d {C}->{K}, {k}x{k}, padding 1, {args.conv_activation}, "
        f"input ({N}, {C}, {S}, {S}): im2col matrix {cols.shape}"
    )

    def layer_step():
        A, cache = layer.forward(X)
        layer.backward(dA, cache, need_dX=True)

    def products():
        cols @ W2.T  # (N P, K) forward
        dZ.T @ cols  # (K, C k k) dW
        dZ @ W2  # (N P, C k k) d cols, before col2im

    times = time_interleaved(
        {"Conv2d forward + backward": layer_step, "bare im2col products": products},
        args.repeats,
    )
    return report(
        "Conv2d forward + backward / bare im2col products",
        times,
        "Conv2d forward + backward",
        "bare im2col products",
        CONV_TARGET,
    )


# ---- command line ---------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[784, 512, 512, 10],
        help="MLP layer sizes, comma separated (default 784,512,512,10)",
    )
    parser.add_argument("--batch", type=int, default=1024, help="MLP batch (default 1024)")
    parser.add_argument("--conv-batch", type=int, default=256, help="Conv2d batch (default 256)")
    parser.add_argument("--conv-in", type=int, default=3, help="input channels (default 3)")
    parser.add_argument("--conv-out", type=int, default=32, help="output channels (default 32)")
    parser.add_argument("--conv-size", type=int, default=32, help="image side (default 32)")
    parser.add_argument(
        "--conv-activation", default="tanh", help="Conv2d activation (default tanh)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--skip-conv", action="store_true", help="only the MLP benchmarks")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for line in blas_summary():
        print(line)
    print(f"repeats: {args.repeats} (after one warm-up); times are best and median")
    step, hvp = bench_mlp(args, rng)
    conv = None if args.skip_conv else bench_conv(args, rng)
    print("\n== summary")
    print(f"  MLP step / bare products       {step:5.2f}   (target <= {MLP_TARGET})")
    if conv is not None:
        print(f"  Conv2d step / bare products    {conv:5.2f}   (target <= {CONV_TARGET})")
    print(f"  MLP hvp / loss_and_grad        {hvp:5.2f}   (expect ~2-3)")


if __name__ == "__main__":
    main()
