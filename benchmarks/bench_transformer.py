"""Transformer encoder training step: torchlite vs PyTorch, each library in its own process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_transformer.py [--threads 2] [--rounds 7]

The model: TransformerEncoder of 2 TransformerEncoderLayer(d_model=128, nhead=4,
dim_feedforward=512, dropout=0.1, batch_first=True), on a batch of 32 sequences of 64 tokens
(float32); one step = zero_grad, forward, MSE loss against a fixed target, backward, SGD step.
Both workers start from the same weights (torchlite writes them, torch loads them) and the
same data; their eval-mode outputs are compared first. This process imports neither library:
it sends the two workers alternating rounds (torchlite, torch, torchlite, ...) and takes the
ratio of per-round medians pair by pair. Target: torchlite / torch <= 1.5.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 1.5
BATCH, SEQ, D_MODEL, NHEAD, FF, LAYERS = 32, 64, 128, 4, 512, 2


# =============================================================================== workers
def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SEQ, D_MODEL), dtype=np.float32)
    target = rng.standard_normal((BATCH, SEQ, D_MODEL), dtype=np.float32)
    return x, target


class TorchliteWorker:
    def __init__(self, threads, weights):
        import numpy as np
        import torchlite
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(threads)
        self.np, nn = np, torchlite.nn
        torchlite.manual_seed(0)
        layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.1, batch_first=True)
        self.model = nn.TransformerEncoder(layer, LAYERS)
        np.savez(weights, **self.model.state_dict())
        self.x, self.target = _data()
        self.model.needs_input_grad = False
        self.opt = torchlite.optim.SGD(self.model.parameters(), lr=0.01)
        self.info = {"torchlite": torchlite.__version__, "numpy": np.__version__, "blas": _blas()}

    def eval_output(self):
        import torchlite

        self.model.eval()
        with torchlite.no_grad():
            out = self.model(self.x)
        self.model.train()
        return out

    def step(self):
        self.opt.zero_grad()
        out = self.model(self.x)
        diff = out - self.target
        self.model.backward(diff * self.np.float32(2.0 / diff.size))
        self.opt.step()


class TorchWorker:
    def __init__(self, threads, weights):
        import numpy as np
        import torch
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(threads)
        torch.set_num_threads(threads)
        self.torch = torch
        layer = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.1, batch_first=True)
        self.model = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        with np.load(weights) as f:
            self.model.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files})
        x, target = _data()
        self.x, self.target = torch.from_numpy(x), torch.from_numpy(target)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        config = torch.__config__.show()
        blas_info = re.findall(r"BLAS_INFO=\w+", config)
        self.info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": _blas() + blas_info,
                     "cpu": [line.strip(" -") for line in config.splitlines() if "CPU capability" in line]}

    def eval_output(self):
        self.model.eval()
        with self.torch.no_grad():
            out = self.model(self.x).numpy()
        self.model.train()
        return out

    def step(self):
        self.opt.zero_grad()
        loss = self.torch.nn.functional.mse_loss(self.model(self.x), self.target)
        loss.backward()
        self.opt.step()


def _blas():
    from threadpoolctl import threadpool_info

    return [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} threads={i.get('num_threads')}"
            for i in threadpool_info()]


def worker(lib, threads, weights, out_file):
    """Answer commands on stdin, one JSON line each: 'steps N' -> per-step seconds."""
    w = (TorchliteWorker if lib == "torchlite" else TorchWorker)(threads, weights)
    import numpy as np

    np.save(out_file, w.eval_output())
    print(json.dumps(w.info), flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        w.step()  # untimed: caches, allocator
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            w.step()
            times.append(time.perf_counter() - t0)
        print(json.dumps(times), flush=True)


# =============================================================================== driver
def _start(lib, args, weights, out_file):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(args.threads),
           "--weights", weights, "--out", out_file]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _ask(proc, steps):
    proc.stdin.write(f"steps {steps}\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--worker", choices=["torchlite", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.threads, args.weights, args.out)

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "weights.npz")
        outs = {lib: os.path.join(tmp, f"{lib}.npy") for lib in ("torchlite", "torch")}
        tl = _start("torchlite", args, weights, outs["torchlite"])
        info = {"torchlite": json.loads(tl.stdout.readline())}  # writes the weights first
        th = _start("torch", args, weights, outs["torch"])
        info["torch"] = json.loads(th.stdout.readline())
        diff = float(np.max(np.abs(np.load(outs["torchlite"]) - np.load(outs["torch"]))))
        medians = {"torchlite": [], "torch": []}
        ratios = []
        for r in range(args.rounds):
            a = statistics.median(_ask(tl, args.steps))
            b = statistics.median(_ask(th, args.steps))
            medians["torchlite"].append(a)
            medians["torch"].append(b)
            ratios.append(a / b)
            print(f"round {r + 1}/{args.rounds}: torchlite {a * 1e3:.1f} ms, torch {b * 1e3:.1f} ms, "
                  f"ratio {a / b:.2f}", file=sys.stderr)
        for proc in (tl, th):
            proc.stdin.close()
            proc.wait()

    def ms(xs):
        return f"{statistics.median(xs) * 1e3:.1f} ms (min {min(xs) * 1e3:.1f}, max {max(xs) * 1e3:.1f})"

    ratio = statistics.median(ratios)
    print(f"# Transformer encoder training step ({LAYERS} layers, d_model {D_MODEL}, {NHEAD} heads, "
          f"ff {FF}, seq {SEQ}, batch {BATCH}, float32, {args.threads} threads)")
    print(f"torchlite: {ms(medians['torchlite'])}   [{info['torchlite']}]")
    print(f"torch:     {ms(medians['torch'])}   [{info['torch']}]")
    print(f"eval-mode output max |torchlite - torch| = {diff:.2e}")
    print(f"ratio torchlite/torch: median {ratio:.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}) "
          f"over {args.rounds} rounds of {args.steps} steps; target <= {TARGET}: "
          f"{'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
