"""Data-parallel training speed: 1 rank x 2 BLAS threads against 2 MPI ranks x 1 thread.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_ddp.py \
        [--batch 128] [--steps 12] [--rounds 3] [--bandwidth-gbit 10] [--latency-us 30]

Both configurations train the wide CNN (conv 1->32 3x3 p1, ReLU, pool 2, conv 32->64 3x3 p1,
ReLU, pool 2, 3136-128-10; float32, SGD momentum) on the same global batch: one process takes
all of it, the two ranks of ``mpiexec -n 2`` take half each and average gradients with
``DistributedDataParallel``. Each configuration runs in its own processes, alternating
A B A B over ``--rounds`` (plus 1 rank x 1 thread, for the parallel efficiency); the speedup
is taken round by round. Reported: samples per second, bytes each rank sends through Allreduce
per step, the time the step spends in Allreduce (with and without waiting for the other rank),
and a projection to 8 machines from the measured compute time and a ring-allreduce cost model
with the stated network.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LR, MOMENTUM = 0.01, 0.9
PROJECT_TO = (1, 2, 4, 8)
#: (name, ranks, BLAS threads per rank): the comparison, and one core alone for the efficiency
CONFIGS = (("1x2", 1, 2), ("2x1", 2, 1), ("1x1", 1, 1))


# =============================================================================== worker side
def build_wide_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 28 -> 14
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14 -> 7
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def worker(args):
    """Train ``args.steps`` timed steps; rank 0 prints one JSON line of medians."""
    import numpy as np

    import torchlite
    import torchlite.distributed as dist
    from torchlite import nn, optim

    rank, world = dist.get_rank(), dist.get_world_size()
    torchlite.manual_seed(0)
    model = dist.DistributedDataParallel(build_wide_cnn(nn))
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    criterion = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 1, 28, 28), dtype=np.float32)[rank::world]
    y = rng.integers(0, 10, args.batch)[rank::world]

    comm_times = []

    def step():
        opt.zero_grad()
        criterion(model(x), y)
        model.backward(criterion.backward())
        opt.step()

    step()  # builds the buckets
    reducer = model._get_reducer() if world > 1 else None
    if reducer is not None:
        reduce = reducer.reduce

        def timed_reduce(*a):
            t0 = time.perf_counter()
            reduce(*a)
            comm_times.append(time.perf_counter() - t0)

        reducer.reduce = timed_reduce
    step()
    comm_times.clear()
    dist.barrier()
    step_times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        step_times.append(time.perf_counter() - t0)
    payload = reducer.nbytes if reducer is not None else sum(p.data.nbytes for p in model.parameters())
    pure = allreduce_only(reducer, dist, args.steps) if reducer is not None else 0.0
    step_med = statistics.median(step_times)
    comm_med = statistics.median(comm_times) if comm_times else 0.0
    result = {
        "world": world, "local_batch": len(x), "step_s": step_med, "samples_per_s": args.batch / step_med,
        "allreduce_in_step_s": comm_med, "allreduce_only_s": pure, "compute_s": step_med - comm_med,
        "payload_bytes": payload, "buckets": len(reducer.buckets) if reducer is not None else 0,
        "blas": blas_info(),
    }
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def allreduce_only(reducer, dist, n):
    """Median time of the step's Allreduces alone, all ranks lined up by a barrier first."""
    from mpi4py import MPI

    comm, times = dist.get_comm(), []
    for _ in range(n):
        comm.Barrier()
        t0 = time.perf_counter()
        for bucket in reducer.buckets:
            comm.Allreduce(MPI.IN_PLACE, bucket.buffer)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i['internal_api']} {i['version']} {i.get('architecture')} threads={i['num_threads']}"
                     for i in threadpool_info() if i["user_api"] == "blas")


# =============================================================================== launcher side
def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.path.exists(beside) else shutil.which("mpiexec")
    if found is None:
        sys.exit('bench_ddp: mpiexec not found: pip install "torchlite[mpi]"')
    return found


def run_config(ranks, threads, args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--batch", str(args.batch),
           "--steps", str(args.steps)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"bench_ddp: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def ring_allreduce_s(nbytes, world, buckets, bandwidth_bytes_s, latency_s):
    """Ring allreduce: 2(W-1) steps per bucket, each rank sending 2(W-1)/W of the payload."""
    if world == 1:
        return 0.0
    return buckets * 2 * (world - 1) * latency_s + 2 * (world - 1) / world * nbytes / bandwidth_bytes_s


def projection(two, args):
    """Samples/s on W machines (one rank each, one core like here) from the measured per-sample
    compute of a rank and the ring cost model; communication does not overlap compute (it
    runs after backward), so the two add up."""
    per_sample = two["compute_s"] / two["local_batch"]
    bw, lat = args.bandwidth_gbit * 1e9 / 8, args.latency_us * 1e-6
    rows = []
    for w in PROJECT_TO:
        comm = ring_allreduce_s(two["payload_bytes"], w, two["buckets"], bw, lat)
        strong = args.batch / (per_sample * args.batch / w + comm)
        weak = w * two["local_batch"] / (per_sample * two["local_batch"] + comm)
        rows.append((w, comm, strong, weak))
    return per_sample, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128, help="global batch (split over the ranks)")
    p.add_argument("--steps", type=int, default=12, help="timed steps per run")
    p.add_argument("--rounds", type=int, default=3, help="A B rounds")
    p.add_argument("--bandwidth-gbit", type=float, default=10.0, help="network bandwidth for the projection")
    p.add_argument("--latency-us", type=float, default=30.0, help="per-message latency for the projection")
    p.add_argument("--json", help="also write all numbers here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    runs = {name: [] for name, _, _ in CONFIGS}
    for r in range(args.rounds):
        for name, ranks, threads in CONFIGS:
            runs[name].append(run_config(ranks, threads, args))
            print(f"round {r + 1}/{args.rounds} {name}: {runs[name][-1]['samples_per_s']:.1f} samples/s",
                  file=sys.stderr)
    report(runs, args)


def report(runs, args):
    def med(name, key):
        return statistics.median(run[key] for run in runs[name])

    def spread(name, key, scale=1.0):
        vals = [run[key] * scale for run in runs[name]]
        return f"{statistics.median(vals):.1f} [{min(vals):.1f}-{max(vals):.1f}]"

    speedups = [b["samples_per_s"] / a["samples_per_s"] for a, b in zip(runs["1x2"], runs["2x1"])]
    two = {k: med("2x1", k) for k in ("compute_s", "local_batch", "payload_bytes", "buckets")}
    print(f"## DDP: wide CNN, global batch {args.batch}, {args.steps} steps x {args.rounds} rounds "
          "(median [min-max])\n")
    print(f"BLAS: 1x2 {runs['1x2'][0]['blas']}; 2x1 {runs['2x1'][0]['blas']}\n")
    print("| config | samples/s | step ms | Allreduce in step ms | Allreduce alone ms |")
    print("|---|---|---|---|---|")
    print(f"| 1 rank x 1 thread | {spread('1x1', 'samples_per_s')} | {spread('1x1', 'step_s', 1e3)} | - | - |")
    print(f"| 1 rank x 2 threads | {spread('1x2', 'samples_per_s')} | {spread('1x2', 'step_s', 1e3)} | - | - |")
    print(f"| 2 ranks x 1 thread | {spread('2x1', 'samples_per_s')} | {spread('2x1', 'step_s', 1e3)} | "
          f"{spread('2x1', 'allreduce_in_step_s', 1e3)} | {spread('2x1', 'allreduce_only_s', 1e3)} |")
    print(f"\nspeedup 2x1 / 1x2: {statistics.median(speedups):.2f}x "
          f"(rounds: {', '.join(f'{s:.2f}' for s in speedups)}; target >= 1.3x); "
          f"2 ranks over 1 thread alone: {med('2x1', 'samples_per_s') / med('1x1', 'samples_per_s'):.2f}x, "
          f"2 threads over 1: {med('1x2', 'samples_per_s') / med('1x1', 'samples_per_s'):.2f}x")
    payload = two["payload_bytes"]
    print(f"Allreduce payload per step: {payload / 1e6:.3f} MB in {int(two['buckets'])} bucket(s); "
          f"a rank sends {payload / 1e6:.3f} MB per step at 2 ranks (ring: 2(W-1)/W x payload, "
          f"{2 * 7 / 8 * payload / 1e6:.3f} MB at 8)")
    per_sample, rows = projection(two, args)
    print(f"\n### Projection to W machines (one rank each): compute {per_sample * 1e3:.3f} ms/sample/rank (measured), "
          f"ring allreduce at {args.bandwidth_gbit:g} Gbit/s, {args.latency_us:g} us per message, no overlap\n")
    print(f"| W | allreduce ms | global batch {args.batch} (strong) samples/s | efficiency | "
          f"local batch {int(two['local_batch'])} (weak) samples/s | efficiency |")
    print("|---|---|---|---|---|---|")
    base = rows[0][2]
    for w, comm, strong, weak in rows:
        print(f"| {w} | {comm * 1e3:.2f} | {strong:.0f} | {strong / (w * base):.0%} | {weak:.0f} | "
              f"{weak / (w * base):.0%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "speedups": speedups, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
