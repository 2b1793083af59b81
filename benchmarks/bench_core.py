"""Benchmark the core derivatives against the bare matrix products they are made of.

Three same-run ratios (see benchmarks/README.md):

1. MLP training step (``net.loss_and_grad``) / the bare matrix products of the same
   shapes: forward ``X @ W.T`` per layer, backward ``dZ.T @ X`` per layer and
   ``dZ @ W`` for every layer but the first. Target (issue 13) <= 1.2.
2. Conv2d forward + backward through the layer's public methods / the bare im2col
   products of the same flops: ``cols @ W.T``, ``dZ.T @ cols``, ``dZ @ W``. Target <= 2.5.
3. MLP ``net.hvp`` / ``net.loss_and_grad``. Target <= 2.0 (the products alone are about
   2.1 times the gradient's here: benchmarks/README.md).
4. The batch-normalised layers of the seed tasks, train and eval mode (softplus), each
   ``layer.forward`` + ``layer.backward`` / the bare products of the same flops (target
   <= 2): Conv2d 8 -> 16, 3 x 3 on (128, 8, 14, 14) (the small CNN's second conv); the
   DS-CNN's pointwise Conv2d 64 -> 64, 1 x 1 on (100, 64, 25, 5); Dense 64 -> 64 on the
   pointwise conv's 12,500 rows (the same products without the NCHW layout); the DS-CNN's
   DepthwiseConv2d, 64 channels 3 x 3 on (100, 64, 25, 5), against its per-channel
   products as one batched matmul.

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

MLP_TARGET = 1.2
CONV_TARGET = 2.5
HVP_TARGET = 2.0
BN_TARGET = 2.0


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


def bare_hvp_products(net, X, rng):
    """A function doing only the matrix products ``net.hvp`` needs (Dense.r_forward and
    r_backward after a forward pass): per layer ``X @ W.T``, ``X @ V.T`` and ``R_dZ.T @ X``,
    and for every layer but the first also ``R_X @ W.T``, ``dZ.T @ R_X``, ``dZ @ W``,
    ``R_dZ @ W`` and ``dZ @ V``."""
    Ws = [layer.W for layer in net.layers]
    N = X.shape[0]
    inputs = [X] + [rng.standard_normal((N, W.shape[1])) for W in Ws[1:]]
    R_inputs = [None] + [rng.standard_normal((N, W.shape[1])) for W in Ws[1:]]
    Vs = [rng.standard_normal(W.shape) for W in Ws]
    dZs = [rng.standard_normal((N, W.shape[0])) for W in Ws]

    def products():
        for A, W, V, R_A in zip(inputs, Ws, Vs, R_inputs):
            A @ W.T  # forward
            A @ V.T  # R-forward
            if R_A is not None:
                R_A @ W.T
        for A, W, V, R_A, dZ in zip(inputs, Ws, Vs, R_inputs, dZs):
            dZ.T @ A  # R_dW, with R_dZ's shape
            if R_A is not None:
                dZ.T @ R_A
                dZ @ W  # dX
                dZ @ W  # R_dX's R_dZ W
                dZ @ V  # and dZ V_W

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
            "bare hvp products": bare_hvp_products(net, X, rng),
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
    hvp = report("MLP hvp / loss_and_grad", times, "net.hvp", "net.loss_and_grad", HVP_TARGET)
    report("their floor: bare hvp products / bare step products", times, "bare hvp products",
           "bare matrix products")
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


# ---- 4: the batch-normalised layers of the seed tasks --------------------------------------


def bare_im2col_products(M, K, n, rng):
    """The three products of a (Dense or im2col) layer step on M rows: ``cols @ Wm.T``,
    ``dZ.T @ cols``, ``dZ @ Wm`` with cols (M, K), Wm (n, K)."""
    cols = rng.standard_normal((M, K))  # (M, K)
    Wm = rng.standard_normal((n, K))  # (n, K)
    dZ = rng.standard_normal((M, n))  # (M, n)

    def products():
        cols @ Wm.T  # (M, n) forward
        dZ.T @ cols  # (n, K) dW
        dZ @ Wm  # (M, K) dX (d cols, before col2im for a conv)

    return products


def bare_depthwise_products(M, C, T, rng):
    """The same multiply-adds as a depthwise step, channel-major, as batched matmuls:
    forward (C, M, T) @ (C, T, 1), dW (C, 1, M) @ (C, M, T), d cols (C, M, 1) @ (C, 1, T)."""
    cols = rng.standard_normal((C, M, T))  # (C, M, T)
    W = rng.standard_normal((C, T, 1))  # (C, T, 1)
    dZ = rng.standard_normal((C, M, 1))  # (C, M, 1)
    dZ_T = np.ascontiguousarray(dZ.transpose(0, 2, 1))  # (C, 1, M)
    W_T = np.ascontiguousarray(W.transpose(0, 2, 1))  # (C, 1, T)

    def products():
        cols @ W  # (C, M, 1) forward
        dZ_T @ cols  # (C, 1, T) dW
        dZ @ W_T  # (C, M, T) d cols, before col2im

    return products


def bn_cases(args):
    """``[(label, layer, input shape, (kind, M, K or C, n or T))]``: the rows of section 4."""
    f = args.bn_activation
    cnn_n, pw_n = args.bn_cnn_batch, args.bn_dscnn_batch
    c = args.bn_dscnn_channels
    Ho, Wo = 25, 5  # the DS-CNN's maps for a 49 x 10 MFCC image (ms.dscnn)
    rows = pw_n * Ho * Wo
    return [
        (f"Conv2d 8->16 3x3 BN, ({cnn_n}, 8, 14, 14)",
         ms.Conv2d(8, 16, 3, padding=1, activation=f, batch_norm=True, seed=0),
         (cnn_n, 8, 14, 14), ("im2col", cnn_n * 14 * 14, 8 * 9, 16)),
        (f"Conv2d {c}->{c} 1x1 BN, ({pw_n}, {c}, {Ho}, {Wo})",
         ms.Conv2d(c, c, 1, activation=f, batch_norm=True, seed=0),
         (pw_n, c, Ho, Wo), ("im2col", rows, c, c)),
        (f"Dense {c}->{c} BN, ({rows}, {c})",
         ms.Dense(c, c, activation=f, batch_norm=True, seed=0),
         (rows, c), ("im2col", rows, c, c)),
        (f"DepthwiseConv2d {c}ch 3x3 BN, ({pw_n}, {c}, {Ho}, {Wo})",
         ms.DepthwiseConv2d(c, 3, padding=1, activation=f, batch_norm=True, seed=0),
         (pw_n, c, Ho, Wo), ("depthwise", rows, c, 9)),
    ]


def bench_bn_layers(args, rng) -> list[tuple[str, float]]:
    """Section 4: ``[(row label, ratio)]``, train then eval mode for every case."""
    print(f"\n4. batch-normalised layers of the seed tasks, {args.bn_activation}, "
          f"forward + backward(need_dX=True) / bare products of the same flops")
    ratios = []
    for label, layer, shape, (kind, M, a, b) in bn_cases(args):
        X = rng.standard_normal(shape)
        bare = (bare_im2col_products(M, a, b, rng) if kind == "im2col"
                else bare_depthwise_products(M, a, b, rng))
        functions = {"bare products": bare}
        for mode in ("train", "eval"):
            twin = layer.in_mode(mode)  # running statistics 0 and 1: any values time alike
            A, _ = twin.forward(X)
            dA = rng.standard_normal(A.shape)

            def step(twin=twin, X=X, dA=dA):
                _, cache = twin.forward(X)
                twin.backward(dA, cache, need_dX=True)

            functions[f"step, {mode} mode"] = step
        times = time_interleaved(functions, args.repeats)
        for mode in ("train", "eval"):
            ratio = report(f"{label}, {mode} / bare {kind} products", times,
                           f"step, {mode} mode", "bare products", BN_TARGET)
            ratios.append((f"{label}, {mode}", ratio))
    return ratios


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
    parser.add_argument(
        "--bn-activation", default="softplus",
        help="activation of section 4's layers (default softplus, the seed tasks')",
    )
    parser.add_argument(
        "--bn-cnn-batch", type=int, default=128,
        help="section 4: batch of the small CNN's Conv2d 8->16 (default 128)",
    )
    parser.add_argument(
        "--bn-dscnn-batch", type=int, default=100,
        help="section 4: batch of the DS-CNN layers on 25 x 5 maps (default 100)",
    )
    parser.add_argument(
        "--bn-dscnn-channels", type=int, default=64,
        help="section 4: channels of the DS-CNN layers (default 64, Hello Edge S)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed rounds (default 10, 3 with --quick)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--skip-conv", action="store_true", help="skip the Conv2d 3->32 row")
    parser.add_argument("--skip-mlp", action="store_true", help="skip the MLP rows")
    parser.add_argument("--skip-bn", action="store_true", help="skip section 4 (BN layers)")
    parser.add_argument(
        "--quick", action="store_true",
        help="a smoke run: 3 timed rounds (unless --repeats), batches 32 (MLP 256)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    if args.quick:
        args.batch, args.conv_batch = min(args.batch, 256), min(args.conv_batch, 32)
        args.bn_cnn_batch, args.bn_dscnn_batch = min(args.bn_cnn_batch, 32), min(
            args.bn_dscnn_batch, 32)
    for name in ("repeats", "batch", "conv_batch", "bn_cnn_batch", "bn_dscnn_batch",
                 "bn_dscnn_channels"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for line in blas_summary():
        print(line)
    print(f"repeats: {args.repeats} (after one warm-up); times are best and median"
          + (" (--quick: smaller batches, a smoke run)" if args.quick else ""))
    step, hvp = (None, None) if args.skip_mlp else bench_mlp(args, rng)
    conv = None if args.skip_conv else bench_conv(args, rng)
    bn = [] if args.skip_bn else bench_bn_layers(args, rng)
    print("\n== summary")
    if step is not None:
        print(f"  MLP step / bare products       {step:5.2f}   (target <= {MLP_TARGET})")
    if conv is not None:
        print(f"  Conv2d step / bare products    {conv:5.2f}   (target <= {CONV_TARGET})")
    if hvp is not None:
        print(f"  MLP hvp / loss_and_grad        {hvp:5.2f}   (target <= {HVP_TARGET})")
    for label, ratio in bn:
        print(f"  {label + ' step / bare products':<62s} {ratio:5.2f}   (target <= {BN_TARGET})")


if __name__ == "__main__":
    main()
