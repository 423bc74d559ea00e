"""Per-layer convolution and pooling timings, torchlite vs PyTorch, on the LeNet and wide-CNN shapes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py [--threads 2] [--rounds 7]
        [--steps 10] [--clock wall|cpu] [--layers lenet.conv1,wide.conv2] [--json out.json]

Each library runs in its own worker process (once torch has run in a process its OpenMP
threads slow numpy's BLAS), with the same thread count (threadpoolctl for numpy's BLAS,
torch.set_num_threads for torch). The driver imports neither: it sends both workers the same
layer, has them check that their outputs agree, then alternates timed rounds (torchlite,
torch, torchlite, ...) and takes the ratio round by round. A round times ``--steps`` calls
after one untimed call and keeps their median. Reported: median over rounds, and the spread
(min..max) of the per-round ratios torchlite / torch.

``--clock cpu`` (with ``--threads 1``) times with the calling thread's CPU time instead of the
wall clock: on a machine shared with other jobs a thread waiting for a core then costs
nothing, so the numbers stay those of an idle machine (two BLAS threads on two busy cores
measured here were off by up to 100x, in steps of the scheduler's 4 ms slice).

Columns: training forward (the layer keeps what backward needs), backward (for a model's first
layer without the input gradient, as both libraries skip it there), their sum, and inference
forward (no_grad). For the first layers the table below it shows what skipping dInput saves.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BATCH = 64
CLOCK = time.perf_counter  # the worker's clock: perf_counter (wall) or thread_time (CPU of this thread)

#: name -> (layer class, args, kwargs, input shape without batch, first layer of its model)
LAYERS = {
    "lenet.conv1": ("Conv2d", (1, 6, 5), {}, (1, 28, 28), True),
    "lenet.pool1": ("MaxPool2d", (2,), {}, (6, 24, 24), False),
    "lenet.conv2": ("Conv2d", (6, 16, 5), {}, (6, 12, 12), False),
    "lenet.pool2": ("MaxPool2d", (2,), {}, (16, 8, 8), False),
    "wide.conv1": ("Conv2d", (1, 32, 3), {"padding": 1}, (1, 28, 28), True),
    "wide.pool1": ("MaxPool2d", (2,), {}, (32, 28, 28), False),
    "wide.conv2": ("Conv2d", (32, 64, 3), {"padding": 1}, (32, 14, 14), False),
    "wide.pool2": ("MaxPool2d", (2,), {}, (64, 14, 14), False),
}


# =============================================================================== worker side
class TorchliteLayer:
    def __init__(self, threads):
        import numpy as np
        import torchlite
        from threadpoolctl import threadpool_limits

        self.np, self.tl = np, torchlite
        self._limits = threadpool_limits(threads)

    def setup(self, name, weights, input_grad=None):
        cls, args, kwargs, shape, first = LAYERS[name]
        self.layer = getattr(self.tl.nn, cls)(*args, **kwargs)
        if weights and os.path.exists(weights):
            with self.np.load(weights) as f:
                self.layer.load_state_dict({k: f[k] for k in f.files})
        elif weights:
            self.np.savez(weights, **{k: v for k, v in self.layer.state_dict().items()})
        self.layer.needs_input_grad = (not first) if input_grad is None else input_grad
        rng = self.np.random.default_rng(0)
        self.x = rng.standard_normal((BATCH,) + shape, dtype=self.np.float32)
        with self.tl.no_grad():
            out = self.layer(self.x)
        self.grad = self.np.random.default_rng(1).standard_normal(out.shape, dtype=self.np.float32)
        return out

    def step(self, mode):
        if mode == "infer":
            t0 = CLOCK()
            with self.tl.no_grad():
                self.layer(self.x)
            return CLOCK() - t0, 0.0
        t0 = CLOCK()
        self.layer(self.x)
        t1 = CLOCK()
        self.layer.backward(self.grad)
        return t1 - t0, CLOCK() - t1

    def summary(self, out):
        return [float(self.np.sum(out, dtype=self.np.float64)), float(self.np.sum(self.np.abs(out), dtype=float))]

    def info(self):
        from threadpoolctl import threadpool_info

        blas = [f"{b['internal_api']} {b['version']} {b['architecture']} ({b['num_threads']} threads)"
                for b in threadpool_info() if b["user_api"] == "blas"]
        return {"numpy": self.np.__version__, "blas": blas}


class TorchLayer(TorchliteLayer):
    def __init__(self, threads):
        import numpy as np
        import torch
        from threadpoolctl import threadpool_limits

        self.np, self.torch = np, torch
        torch.set_num_threads(threads)
        self._limits = threadpool_limits(threads)

    def setup(self, name, weights, input_grad=None):
        torch = self.torch
        cls, args, kwargs, shape, first = LAYERS[name]
        self.layer = getattr(torch.nn, cls)(*args, **kwargs)
        if weights:
            with self.np.load(weights) as f:
                self.layer.load_state_dict({k: torch.from_numpy(f[k].copy()) for k in f.files})
        x = self.np.random.default_rng(0).standard_normal((BATCH,) + shape, dtype=self.np.float32)
        self.x = torch.from_numpy(x).requires_grad_(not first if input_grad is None else input_grad)
        with torch.no_grad():
            out = self.layer(self.x)
        self.grad = torch.from_numpy(self.np.random.default_rng(1).standard_normal(tuple(out.shape),
                                                                                    dtype=self.np.float32))
        return out.numpy()

    def step(self, mode):
        torch = self.torch
        if mode == "infer":
            t0 = CLOCK()
            with torch.no_grad():
                self.layer(self.x)
            return CLOCK() - t0, 0.0
        self.x.grad = None
        for p in self.layer.parameters():
            p.grad = None
        t0 = CLOCK()
        out = self.layer(self.x)
        t1 = CLOCK()
        out.backward(self.grad)
        return t1 - t0, CLOCK() - t1

    def info(self):
        config = self.torch.__config__.show()
        mkl = "MKL" if "Math Kernel Library" in config else "?"
        onednn = "oneDNN" if "MKL-DNN" in config else "?"
        return {"torch": self.torch.__version__, "blas": [f"{mkl} for GEMM, {onednn} for conv"],
                "threads": self.torch.get_num_threads()}


def worker_main(lib, threads, clock):
    """Answer one JSON command per stdin line with one JSON line on the protocol pipe."""
    global CLOCK
    CLOCK = time.thread_time if clock == "cpu" else time.perf_counter
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    sys.path.insert(0, ROOT)
    runner = (TorchliteLayer if lib == "torchlite" else TorchLayer)(threads)
    proto.write(json.dumps({"info": runner.info()}) + "\n")
    proto.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["op"] == "quit":
                return
            if msg["op"] == "setup":
                out = runner.setup(msg["layer"], msg["weights"], msg.get("input_grad"))
                reply = {"summary": runner.summary(out)}
            else:
                runner.step(msg["mode"])  # untimed: caches, buffers, allocator
                steps = [runner.step(msg["mode"]) for _ in range(msg["steps"])]
                reply = {"fwd": [s[0] for s in steps], "bwd": [s[1] for s in steps]}
        except Exception:
            reply = {"error": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


# =============================================================================== driver side
class Worker:
    def __init__(self, lib, threads, clock):
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        self.lib = lib
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads",
                                      str(threads), "--clock", clock], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.info = self._read()["info"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.lib} worker exited (code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the {self.lib} worker failed:\n{reply['error']}")
        return reply

    def ask(self, op, **kwargs):
        self.proc.stdin.write(json.dumps(dict(op=op, **kwargs)) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait()


def _rounds(workers, mode, rounds, steps):
    """Per-round medians (ms) of forward and backward for each worker, alternating who goes first."""
    out = {w.lib: {"fwd": [], "bwd": []} for w in workers}
    for r in range(rounds):
        for w in (workers if r % 2 == 0 else workers[::-1]):
            reply = w.ask("time", mode=mode, steps=steps)
            for part in ("fwd", "bwd"):
                out[w.lib][part].append(1e3 * statistics.median(reply[part]))
    return out


def _ratio(a, b):
    ratios = [x / y for x, y in zip(a, b)]
    return statistics.median(ratios), min(ratios), max(ratios)


def bench_layer(name, tl, th, args, weights):
    a = tl.ask("setup", layer=name, weights=weights)["summary"]
    b = th.ask("setup", layer=name, weights=weights)["summary"]
    if abs(a[0] - b[0]) > 1e-5 * b[1] or abs(a[1] - b[1]) > 1e-5 * b[1]:
        raise RuntimeError(f"{name}: outputs differ (sum, sum of |.|): torchlite {a}, torch {b}")
    row = {"layer": name}
    train = _rounds([tl, th], "train", args.rounds, args.steps)
    infer = _rounds([tl, th], "infer", args.rounds, args.steps)
    for lib, key in (("torchlite", "tl"), ("torch", "th")):
        row[f"{key}_fwd"] = statistics.median(train[lib]["fwd"])
        row[f"{key}_bwd"] = statistics.median(train[lib]["bwd"])
        row[f"{key}_infer"] = statistics.median(infer[lib]["fwd"])
        row[f"{key}_step"] = [f + b for f, b in zip(train[lib]["fwd"], train[lib]["bwd"])]
    row["ratio_fwd"] = _ratio(train["torchlite"]["fwd"], train["torch"]["fwd"])
    row["ratio_bwd"] = _ratio(train["torchlite"]["bwd"], train["torch"]["bwd"])
    row["ratio_step"] = _ratio(row["tl_step"], row["th_step"])
    row["ratio_infer"] = _ratio(infer["torchlite"]["fwd"], infer["torch"]["fwd"])
    row["tl_step"], row["th_step"] = statistics.median(row["tl_step"]), statistics.median(row["th_step"])
    return row


def input_grad_saving(name, tl, args, weights):
    """torchlite backward of a first layer with and without dLoss/dInput (ms, median of rounds)."""
    times = {}
    for flag in (True, False):
        tl.ask("setup", layer=name, weights=weights, input_grad=flag)
        times[flag] = statistics.median(_rounds([tl], "train", args.rounds, args.steps)["torchlite"]["bwd"])
    return times[True], times[False]


def _fmt_ratio(r):
    return f"{r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})"


def report(rows, savings, tl, th, args):
    cls = {name: f"{spec[0]}{spec[1]}{'' if not spec[2] else ' ' + str(spec[2])} on {(BATCH,) + spec[3]}"
           for name, spec in LAYERS.items()}
    clock = "CPU time of the timing thread" if args.clock == "cpu" else "wall clock"
    print(f"# Per-layer timings, batch {BATCH}, float32, {args.threads} thread(s), {clock}; ms, median of "
          f"{args.rounds} rounds x {args.steps} steps")
    print(f"torchlite: numpy {tl.info['numpy']}, {'; '.join(tl.info['blas'])}")
    print(f"torch {th.info['torch']}: {'; '.join(th.info['blas'])}, {th.info['threads']} threads\n")
    print("| layer | shape | fwd tl / torch | bwd tl / torch | fwd+bwd ratio | infer tl / torch | infer ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layer']} | {cls[r['layer']]} | {r['tl_fwd']:.2f} / {r['th_fwd']:.2f} | "
              f"{r['tl_bwd']:.2f} / {r['th_bwd']:.2f} | {_fmt_ratio(r['ratio_step'])} | "
              f"{r['tl_infer']:.2f} / {r['th_infer']:.2f} | {_fmt_ratio(r['ratio_infer'])} |")
    if savings:
        print("\nFirst layers: torchlite backward with / without dLoss/dInput (needs_input_grad=False)\n")
        print("| layer | with dInput | without | saved |")
        print("|---|---|---|---|")
        for name, (with_dx, without) in savings.items():
            print(f"| {name} | {with_dx:.2f} ms | {without:.2f} ms | {100 * (1 - without / with_dx):.0f}% |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the timing thread's CPU time (needs --threads 1)")
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--json", help="also write the numbers here")
    parser.add_argument("--worker", choices=("torchlite", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker, args.threads, args.clock)
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu measures one thread: use it with --threads 1")
    names = [n for n in args.layers.split(",") if n]
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        parser.error(f"unknown layers {unknown}; choose from {list(LAYERS)}")
    tl, th = Worker("torchlite", args.threads, args.clock), Worker("torch", args.threads, args.clock)
    rows, savings = [], {}
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                weights = os.path.join(tmp, name + ".npz") if LAYERS[name][0].startswith("Conv") else None
                print(f"{name} ...", file=sys.stderr, flush=True)
                rows.append(bench_layer(name, tl, th, args, weights))
                if LAYERS[name][4]:
                    savings[name] = input_grad_saving(name, tl, args, weights)
    finally:
        tl.close()
        th.close()
    report(rows, savings, tl, th, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "clock": args.clock, "rows": rows, "input_grad_saving": savings},
                      f, indent=1)


if __name__ == "__main__":
    main()
