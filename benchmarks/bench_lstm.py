"""Training step of a 2-layer LSTM, torchlite vs PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_lstm.py [--threads 1] [--rounds 7]

The model: LSTM(32, 128, num_layers=2) over a (seq 50, batch 64, 32) float32 batch, a
Linear(128, 10) on the last step's output, CrossEntropyLoss, backward through time, an SGD
momentum step. Each round starts one fresh process per library (A B A B ...: once torch has
run in a process its OpenMP threads slow numpy's BLAS), both set to the same thread count;
each process loads the same weights, checks its first losses, warms up and reports the median
of its timed steps. The ratio torchlite/torch is taken round by round. Target: <= 1.5.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEQ, BATCH, INPUT, HIDDEN, LAYERS, CLASSES = 50, 64, 32, 128, 2, 10
LR, MOMENTUM = 0.01, 0.9
TARGET = 1.5


def batch():
    import numpy as np

    rng = np.random.default_rng(1)
    return (rng.standard_normal((SEQ, BATCH, INPUT), dtype=np.float32),
            rng.integers(0, CLASSES, BATCH, dtype=np.int64))


def blas_info():
    from threadpoolctl import threadpool_info

    return [f"{b['internal_api']} {b['version']} {b['architecture']} ({b['num_threads']} threads)"
            for b in threadpool_info() if b["user_api"] == "blas"]


def torchlite_step(weights):
    import numpy as np
    import torchlite
    import torchlite.nn as nn

    lstm, head = nn.LSTM(INPUT, HIDDEN, LAYERS), nn.Linear(HIDDEN, CLASSES)
    lstm.needs_input_grad = False  # the input is data
    with np.load(weights) as f:
        lstm.load_state_dict({k[5:]: f[k] for k in f.files if k.startswith("lstm.")})
        head.load_state_dict({k[5:]: f[k] for k in f.files if k.startswith("head.")})
    criterion = nn.CrossEntropyLoss()
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torchlite.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    x, y = batch()

    def step():
        opt.zero_grad()
        out, _ = lstm(x)
        loss = criterion(head(out[-1]), y)
        g_last = head.backward(criterion.backward())
        g_out = np.zeros_like(out)
        g_out[-1] = g_last
        lstm.backward(g_out, None)
        opt.step()
        return float(loss)

    return step, {"numpy": np.__version__, "blas": blas_info()}


def torch_step(weights, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    lstm, head = torch.nn.LSTM(INPUT, HIDDEN, LAYERS), torch.nn.Linear(HIDDEN, CLASSES)
    with np.load(weights) as f:
        lstm.load_state_dict({k[5:]: torch.from_numpy(f[k]) for k in f.files if k.startswith("lstm.")})
        head.load_state_dict({k[5:]: torch.from_numpy(f[k]) for k in f.files if k.startswith("head.")})
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=LR, momentum=MOMENTUM)
    x, y = (torch.from_numpy(a) for a in batch())

    def step():
        opt.zero_grad()
        out, _ = lstm(x)
        loss = criterion(head(out[-1]), y)
        loss.backward()
        opt.step()
        return float(loss)

    config = [line.strip(" -") for line in torch.__config__.show().splitlines() if "Math Kernel" in line]
    return step, {"torch": torch.__version__, "threads": torch.get_num_threads(), "config": config,
                  "blas": blas_info()}


def worker(lib, threads, weights, steps):
    """One round in this process: 3 parity losses on fresh weights, 2 warm-up steps, timed steps."""
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, ROOT)
    with threadpool_limits(threads):
        make = (lambda: torchlite_step(weights)) if lib == "torchlite" else (lambda: torch_step(weights, threads))
        step, info = make()
        losses = [step() for _ in range(3)]
        step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    print(json.dumps({"median_s": statistics.median(times), "losses": losses, "info": info}))


def save_weights(path):
    sys.path.insert(0, ROOT)
    import numpy as np
    import torchlite

    torchlite.manual_seed(0)
    lstm, head = torchlite.nn.LSTM(INPUT, HIDDEN, LAYERS), torchlite.nn.Linear(HIDDEN, CLASSES)
    state = {"lstm." + k: v for k, v in lstm.state_dict().items()}
    state.update({"head." + k: v for k, v in head.state_dict().items()})
    np.savez(path, **state)


def run_round(lib, args, weights):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(args.threads),
                          "--weights", weights, "--steps", str(args.steps)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def quartiles(values):
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return q2, q1, q3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--worker", choices=("torchlite", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.threads, args.weights, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "weights.npz")
        save_weights(weights)
        times = {"torchlite": [], "torch": []}
        ratios, first = [], {}
        for r in range(args.rounds):
            for lib in times:
                res = run_round(lib, args, weights)
                times[lib].append(res["median_s"])
                first.setdefault(lib, res)
            ratios.append(times["torchlite"][-1] / times["torch"][-1])
            print(f"round {r + 1}: torchlite {1e3 * times['torchlite'][-1]:.1f} ms, torch "
                  f"{1e3 * times['torch'][-1]:.1f} ms, ratio {ratios[-1]:.2f}", file=sys.stderr)
    losses = [(a, b) for a, b in zip(first["torchlite"]["losses"], first["torch"]["losses"])]
    diff = max(abs(a - b) / abs(b) for a, b in losses)
    info_tl, info_th = first["torchlite"]["info"], first["torch"]["info"]
    print(f"### LSTM({INPUT}, {HIDDEN}, num_layers={LAYERS}) training step, seq {SEQ}, batch {BATCH}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"- torchlite: numpy {info_tl['numpy']}, BLAS {', '.join(info_tl['blas'])}")
    print(f"- torch {info_th['torch']} ({info_th['threads']} threads): {'; '.join(info_th['config'])}")
    print(f"- parity: first 3 losses agree to {diff:.1e} (relative)")
    print(f"- {args.rounds} rounds (A B alternating, fresh processes), each the median of {args.steps} steps; "
          "median (IQR) over rounds\n")
    print("| | torchlite ms | torch ms | ratio torchlite/torch | target | met |")
    print("| --- | ---: | ---: | ---: | ---: | :---: |")
    cells = []
    for values, scale in ((times["torchlite"], 1e3), (times["torch"], 1e3), (ratios, 1)):
        m, q1, q3 = quartiles([v * scale for v in values])
        cells.append(f"{m:.2f} ({q1:.2f}–{q3:.2f})")
    ratio = quartiles(ratios)[0]
    print(f"| train step | {' | '.join(cells)} | ≤ {TARGET} | {'yes' if ratio <= TARGET else '**no**'} |")


if __name__ == "__main__":
    main()
