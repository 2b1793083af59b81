"""Benchmark forming splitting matrices and finding splitting indices.

Three same-run measurements (see benchmarks/README.md):

1. Forming every S_i of a Dense layer with ``layer.splitting_matrices(dA, cache)``
   (N = 4096 samples, fan-in 128, n = 128 neurons, d = 129). Achieved flop rate,
   counting the upper-triangle kernel's real work ``N n d (d + 1)``, over the flop
   rate of a plain float64 2000 x 2000 matrix product timed in the same run.
   Target (issue 13) >= 0.75. Also: the rate of the bare product the kernel reduces to
   ((n x N) @ (N x T), T = d(d+1)/2, no outer products built), and the peak memory
   traced by ``tracemalloc`` during the call against the n d^2 * 8 bytes of S itself
   (target <= 1.5).
2. Smallest eigenpairs of a Dense layer with fan-in 1024 (n = 64, N = 2048) on data from
   a random teacher: ``ms.splitting_indices(solver="matrix_free")`` against
   ``solver="dense"`` (form S, then ``eigh``). Target: >= 5x faster, with the largest
   relative eigenvalue difference <= 1e-6.
3. The same comparison for a Conv2d layer (16 -> 32 channels, 3 x 3, 16 x 16 images,
   N = 256). Target (issue 13): >= 2x faster than dense.
4. The growth step on the seed tasks: the splitting indices of every growable layer
   (``ms.splitting_indices_of_layers`` over ``ms.growth.growable_layers(net)``, one backprop
   for all, as the growth loop runs it; in eval mode
   after ``ms.set_running_statistics`` for batch norm, with the growth loop's default solver)
   over one training epoch of the same samples (``ms.train`` with Adam, batch 128, N / 128
   steps), for Li et al.'s prototype network on the digits, ``ms.small_cnn(width=(8, 16))``
   on the Fashion-MNIST images and ``ms.dscnn(width=16)`` on the 2400 keyword MFCCs.
   Target <= 2.

Timings: one warm-up call, then ``--repeats`` rounds with the compared functions
interleaved; ratios are of best times (medians printed beside them). The dense
eigen-solve of section 2 is expensive (64 eigh of 1025 x 1025), so it runs
``--eig-repeats`` times without warm-up. No assertion is made on any time.

Run ``python benchmarks/bench_splitting.py --help`` for the sizes.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import tracemalloc

import numpy as np
from bench_core import blas_summary, time_interleaved

import minisplit as ms
from minisplit import prototypes as protos

RATE_TARGET = 0.75
MEMORY_TARGET = 1.5
SPEEDUP_TARGET = 5.0
CONV_SPEEDUP_TARGET = 2.0
AGREEMENT_TARGET = 1e-6
GROWTH_TARGET = 2.0
#: Section 4's tasks, in order.
GROWTH_TASKS = ("prototypes", "small_cnn", "dscnn")


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
        f"({s_bytes / 2**20:.1f} MiB, S itself)   "
        f"{verdict(peak / s_bytes, MEMORY_TARGET, at_least=False)}"
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
    return compare_solvers(title, net, X, y, 0, args, CONV_SPEEDUP_TARGET)


# ---- 4: the growth step on the seed tasks ----------------------------------------------------


def growth_task(name, args):
    """``(title, net, X, y)`` of one seed task, X cut to the task's sample count."""
    if name == "prototypes":
        data = ms.datasets.load("digits", seed=0)
        net = protos.prototype_network(n_in=data.X_train.shape[1],
                                       n_prototypes=args.proto_prototypes,
                                       similarity="squared", tau=0.1, seed=0)
        title = f"prototype network ({args.proto_prototypes} prototypes) on the digits"
        n = None
    elif name == "small_cnn":
        data = ms.datasets.load("fashion_mnist", images=True)
        net = ms.small_cnn(width=(8, 16), seed=0)
        title = "small_cnn(width=(8, 16)) on the Fashion-MNIST images"
        n = args.cnn_samples
    else:
        data = ms.datasets.load("keywords", images=True)
        net = ms.dscnn(width=args.dscnn_width, n_blocks=4, seed=0)
        title = f"dscnn(width={args.dscnn_width}, n_blocks=4) on the keyword MFCCs"
        n = args.dscnn_samples
    X, y = data.X_train[:n], data.y_train[:n]
    if X.shape[0] < data.X_train.shape[0]:
        title += f" (the first {X.shape[0]} of {data.X_train.shape[0]} training samples)"
    return title, net, X, y


def time_rounds(functions: dict, repeats: int) -> tuple[dict, dict]:
    """Wall and CPU times (this process) of each function over ``repeats`` interleaved rounds,
    no warm-up (each call takes seconds): ``({name: wall seconds}, {name: CPU seconds})``.
    The CPU times count only this process's work, so other load on shared cores matters less
    (with several BLAS threads they include the threads' waiting)."""
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def bench_growth_task(name, args) -> float:
    title, net, X, y = growth_task(name, args)
    N, batch = X.shape[0], args.growth_batch
    steps = math.ceil(N / batch)
    solver = ms.GrowthConfig().solver  # what the growth loop uses by default
    layers = ms.growth.growable_layers(net)
    split_net = net
    if net.has_batch_norm:  # the growth loop splits in eval mode, after these statistics
        split_net = ms.set_running_statistics(net, X).set_mode("eval")
    shapes = ", ".join(f"{i}: {type(net.layers[i]).__name__} n={net.layers[i].n_neurons} "
                       f"d={net.layers[i].neuron_dim}" for i in layers)
    print(f"\n4. {title}: N = {N}, growable layers {shapes}; solver {solver!r}")

    def split_step():  # what the growth loop runs: every layer's indices from one backprop
        ms.splitting_indices_of_layers(split_net, X, y, layers, solver=solver)

    def epoch():
        ms.train(net, X, y, ms.Adam(lr=0.01), steps, batch_size=batch, rng=0)

    split_name = f"splitting step ({len(layers)} layers)"
    epoch_name = f"one epoch ({steps} Adam steps of {batch})"
    times, cpu = time_rounds({split_name: split_step, epoch_name: epoch}, args.growth_repeats)
    backprop = time_rounds({"bp": lambda: split_net.backprop(X, y)}, args.growth_repeats)[0]["bp"]
    for key in (split_name, epoch_name):
        print_time(key, times[key])
    print_time("net.backprop(X, y), eval mode", backprop)
    ratio = min(times[split_name]) / min(times[epoch_name])
    median = statistics.median(times[split_name]) / statistics.median(times[epoch_name])
    cpu_ratio = min(cpu[split_name]) / min(cpu[epoch_name])
    print(f"  splitting step / epoch: best {ratio:.2f}, median {median:.2f}, CPU time "
          f"{cpu_ratio:.2f}   {verdict(ratio, GROWTH_TARGET, at_least=False)}")
    per_layer = {}  # once, after the rounds: each layer alone, less one backprop
    for i in layers:
        start = time.perf_counter()
        ms.splitting_indices(split_net, X, y, i, solver=solver)
        per_layer[i] = time.perf_counter() - start - min(backprop)
    print("  per layer (one call each, less the best backprop): " + ", ".join(
        f"{i}: {t * 1e3:.0f} ms" for i, t in per_layer.items())
          + f"; splitting step / backprop {min(times[split_name]) / min(backprop):.1f}")
    return ratio


def bench_growth(args, rng) -> dict:
    """Section 4: ``{task: splitting step / epoch}`` (the data are the tasks', not rng's)."""
    return {name: bench_growth_task(name, args) for name in args.growth_tasks}


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
    add("--growth-tasks", type=lambda s: [v for v in s.split(",") if v],
        default=list(GROWTH_TASKS),
        help=f"section 4: seed tasks, comma separated (default {','.join(GROWTH_TASKS)})")
    add("--proto-prototypes", type=int, default=10,
        help="section 4: prototypes of the prototype network (default 10, the budget)")
    add("--cnn-samples", type=int, default=None,
        help="section 4: Fashion-MNIST images (default all 6000; 600 with --quick)")
    add("--dscnn-width", type=int, default=16, help="section 4: DS-CNN width (default 16)")
    add("--dscnn-samples", type=int, default=None,
        help="section 4: keyword clips (default all 2400; 64 with --quick)")
    add("--growth-batch", type=int, default=128, help="section 4: batch size (default 128)")
    add("--growth-repeats", type=int, default=None,
        help="section 4: timed rounds (default 2, 1 with --quick)")
    add("--quick", action="store_true",
        help="a smoke run of section 4 (fewer samples, one round); sections 1-3 unchanged")
    add("--seed", type=int, default=0, help="random seed (default 0)")
    add(
        "--sections",
        type=lambda s: sorted({int(v) for v in s.split(",")}),
        default=[1, 2, 3, 4],
        help="which sections to run, comma separated (default 1,2,3,4)",
    )
    args = parser.parse_args(argv)
    if not set(args.sections) <= {1, 2, 3, 4}:
        parser.error(f"--sections must be taken from 1,2,3,4, got {args.sections}")
    unknown = sorted(set(args.growth_tasks) - set(GROWTH_TASKS))
    if unknown or not args.growth_tasks:
        parser.error(f"--growth-tasks must be taken from {','.join(GROWTH_TASKS)}, "
                     f"got {','.join(args.growth_tasks)}")
    defaults = {"cnn_samples": (None, 600), "dscnn_samples": (None, 64), "growth_repeats": (2, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    for name in ("proto_prototypes", "dscnn_width", "growth_batch", "growth_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("cnn_samples", "dscnn_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
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
    benches = ((1, bench_form), (2, bench_dense_eigen), (3, bench_conv_eigen), (4, bench_growth))
    for section, bench in benches:
        if section in args.sections:  # each section its own stream: same data when run alone
            results[section] = bench(args, np.random.default_rng([args.seed, section]))
    print("\n== summary")
    if 1 in results:
        rate, memory = results[1]
        print(f"  1. S rate / plain matmul           {rate:6.3f}   (target >= {RATE_TARGET})")
        print(f"     peak memory / (n d^2 * 8 bytes)  {memory:6.2f}   (target <= {MEMORY_TARGET})")
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
            f"  3. Conv2d matrix-free speed-up      {speedup:6.1f}x  (target >= "
            f"{CONV_SPEEDUP_TARGET:g}x), eigenvalues agree to {agreement:.1e}"
        )
    for name, ratio in results.get(4, {}).items():
        print(f"  4. {name + ': splitting step / epoch':<34s} {ratio:6.2f}   "
              f"(target <= {GROWTH_TARGET:g})")


if __name__ == "__main__":
    main()
