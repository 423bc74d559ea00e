"""torchlite vs PyTorch on whole models: training-step and inference time, peak memory, import time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py [--threads 2] [--repeats N] [--quick]

Each library runs in its own worker process (once torch has run in a process its OpenMP
threads slow numpy's BLAS, so one process would measure that interference, not the
libraries). This process imports neither library: it starts the two workers, sends them the
same work in alternating rounds (torchlite, torch, torchlite, torch, ...), and takes the ratio
round by round. Both workers load the same weights (written once by the torchlite worker and
copied into torch through ``load_state_dict``) and generate the same data. The report is a
markdown table on stdout; progress goes to stderr; all numbers also go to a JSON file.
"""
import argparse
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBS = ("torchlite", "torch")
LR, MOMENTUM = 0.01, 0.9
TRAIN_BATCH, INFER_BATCH = 64, 1000
PARITY_ROWS = 20

# Targets for the ratio torchlite / torch (None: reported, no target).
TARGETS = {
    ("mlp", "train"): 0.8, ("lenet", "train"): 1.5, ("wide_cnn", "train"): 1.2,
    ("mlp", "infer"): None, ("lenet", "infer"): 0.7, ("wide_cnn", "infer"): 0.7,
}
IMPORT_TARGET_S = 0.4
RSS_TARGET_RATIO = 0.5
BUSY_THRESHOLD = 0.1  # a round waits until other processes use less than this fraction of the CPUs


# =============================================================================== worker side
def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux >= 4.0), so each model's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory():
    import resource

    return {"rss_mb": _status_kb("VmRSS") / 1024, "hwm_mb": _status_kb("VmHWM") / 1024,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _blas_info():
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


class TorchliteRunner:
    """One model in torchlite: load weights, a training step, an inference pass."""

    def __init__(self, threads):
        import numpy as np
        import torchlite
        from threadpoolctl import threadpool_limits

        self.np, self.tl = np, torchlite
        self._limits = threadpool_limits(threads)

    def info(self):
        import scipy

        return {"version": self.tl.__version__, "numpy": self.np.__version__, "scipy": scipy.__version__,
                "blas": _blas_info()}

    def save_weights(self, name, path, seed):
        from models import build

        self.tl.manual_seed(seed)
        model = build(self.tl.nn, name)
        self.np.savez(path, **{k: self.np.asarray(v) for k, v in model.state_dict().items()})

    def setup(self, name, weights):
        from models import build, make_batch

        self.model = build(self.tl.nn, name)
        self.model.needs_input_grad = False  # the input is data: no dLoss/dInput (torch skips it too)
        self.criterion = self.tl.nn.CrossEntropyLoss()
        with self.np.load(weights) as f:
            self.weights = {k: f[k] for k in f.files}
        self.x, self.y = make_batch(name, TRAIN_BATCH, seed=1)
        self.x_infer, _ = make_batch(name, INFER_BATCH, seed=2)
        self.reset()

    def reset(self):
        self.model.load_state_dict(self.weights)
        self.model.train()
        self.opt = self.tl.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def train_step(self):
        self.opt.zero_grad()
        loss = self.criterion(self.model(self.x), self.y)
        self.model.backward(self.criterion.backward())
        self.opt.step()
        return loss

    def eval(self):
        self.model.eval()

    def infer(self):
        with self.tl.no_grad():
            return self.model(self.x_infer)

    def to_list(self, value):
        return self.np.asarray(value, dtype=self.np.float64).ravel().tolist()


class TorchRunner(TorchliteRunner):
    """The same model in PyTorch."""

    def __init__(self, threads):
        import numpy as np
        import torch
        from threadpoolctl import threadpool_limits

        self.np, self.torch = np, torch
        torch.set_num_threads(threads)
        self._limits = threadpool_limits(threads)

    def info(self):
        config = self.torch.__config__.show()

        def find(pattern):
            m = re.search(pattern, config)
            return m.group(1) if m else "?"

        blas, mkl = find(r"BLAS_INFO=(\w+)"), find(r"Math Kernel Library Version (\S+)")
        onednn, cpu = find(r"MKL-DNN (v\S+)"), find(r"CPU capability usage: (\w+)")
        summary = f"BLAS_INFO={blas} (MKL {mkl}), oneDNN {onednn} for conv, CPU capability {cpu}"
        return {"version": self.torch.__version__, "numpy": self.np.__version__, "config": summary,
                "num_threads": self.torch.get_num_threads(), "blas": _blas_info()}

    def setup(self, name, weights):
        from models import build, make_batch

        torch = self.torch
        self.model = build(torch.nn, name)
        self.criterion = torch.nn.CrossEntropyLoss()
        with self.np.load(weights) as f:
            self.weights = {k: torch.from_numpy(f[k].copy()) for k in f.files}
        x, y = make_batch(name, TRAIN_BATCH, seed=1)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.x_infer = torch.from_numpy(make_batch(name, INFER_BATCH, seed=2)[0])
        self.reset()

    def reset(self):
        self.model.load_state_dict(self.weights)
        self.model.train()
        self.opt = self.torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def train_step(self):
        self.opt.zero_grad()
        loss = self.criterion(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss

    def infer(self):
        with self.torch.no_grad():
            return self.model(self.x_infer)

    def to_list(self, value):
        return value.detach().double().reshape(-1).tolist()


def _time_round(runner, mode, steps):
    """Per-step seconds for ``steps`` steps, after one untimed step (caches, buffers)."""
    if mode == "train":
        runner.reset()
        step = runner.train_step
    else:
        runner.eval()
        step = runner.infer
    step()
    gc.collect()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def _parity(runner):
    """Losses of three training steps and the first inference logits, to check both libraries agree."""
    runner.reset()
    losses = [runner.to_list(runner.train_step())[0] for _ in range(3)]
    runner.reset()
    runner.eval()
    logits = runner.to_list(runner.infer()[:PARITY_ROWS])
    return {"losses": losses, "logits": logits}


def worker_main(lib, threads):
    """Answer one JSON command per stdin line with one JSON line on the protocol pipe."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    sys.path[:0] = [ROOT, HERE]
    t0 = time.perf_counter()
    runner = (TorchliteRunner if lib == "torchlite" else TorchRunner)(threads)
    ready = {"import_s": time.perf_counter() - t0, "info": runner.info(), "memory": _memory()}
    proto.write(json.dumps(ready) + "\n")
    proto.flush()
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            op = msg["op"]
            if op == "quit":
                reply = {"memory": _memory()}
            elif op == "save_weights":
                runner.save_weights(msg["model"], msg["path"], msg["seed"])
                reply = {}
            elif op == "setup":
                runner.model = None
                gc.collect()
                reply = {"peak_reset": _reset_peak_rss()}
                runner.setup(msg["model"], msg["weights"])
                reply["parity"] = _parity(runner)
            elif op == "time":
                reply = {"times": _time_round(runner, msg["mode"], msg["steps"])}
            elif op == "memory":
                reply = _memory()
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception:
            reply = {"error": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()
        if msg.get("op") == "quit":
            return


# =============================================================================== driver side
class Worker:
    """A worker subprocess for one library, spoken to in JSON lines."""

    def __init__(self, lib, threads, env):
        self.lib = lib
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", lib,
                                      "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.ready = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.lib} worker exited (code {self.proc.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the {self.lib} worker failed:\n{reply['error']}")
        return reply

    def ask(self, op, **kwargs):
        self.proc.stdin.write(json.dumps(dict(op=op, **kwargs)) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        reply = self.ask("quit")
        self.proc.wait()
        return reply


def _child_env(threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _cpu_busy(interval=0.25):
    """Fraction of all CPUs busy over ``interval`` seconds (/proc/stat); None where unavailable."""
    def snapshot():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # all, idle + iowait

    try:
        total0, idle0 = snapshot()
        time.sleep(interval)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_quiet(max_wait, threshold=None):
    """Wait (up to ``max_wait`` s) until other processes use under ``threshold`` of the CPUs.

    Called between rounds, while both workers sleep on their pipes, so what is busy is someone
    else. One busy core makes a 2-thread BLAS or OpenMP pool wait on its descheduled thread
    (a torch MLP step went from 1.8 to 150 ms), which says nothing about either library.
    Returns the busy fraction seen last.
    """
    threshold = BUSY_THRESHOLD if threshold is None else threshold
    deadline = time.monotonic() + max_wait
    while True:
        busy = _cpu_busy()
        if busy is None or busy < threshold or time.monotonic() >= deadline:
            return busy


def _median_iqr(values):
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q2, q1, q3


def measure_imports(repeats, env, max_wait):
    """Seconds for ``import <lib>`` in a fresh interpreter, alternating the libraries; first run dropped."""
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    out = {lib: {"import_s": [], "process_s": []} for lib in LIBS}
    for i in range(repeats + 1):
        for lib in LIBS:
            wait_until_quiet(max_wait)
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code.format(lib)], capture_output=True, text=True,
                                 env=env, cwd=ROOT, check=True)
            wall = time.perf_counter() - t0
            if i:
                out[lib]["import_s"].append(float(res.stdout.split()[-1]))
                out[lib]["process_s"].append(wall)
    return out


def _check_parity(a, b):
    """Largest relative loss difference and largest absolute logit difference."""
    dl = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a["losses"], b["losses"]))
    dz = max(abs(x - y) for x, y in zip(a["logits"], b["logits"]))
    return {"loss_rel": dl, "logits_abs": dz, "ok": dl < 1e-3 and dz < 1e-3}


def benchmark_model(name, workers, weights, args, log):
    """Parity check, then alternating timed rounds for training and inference; memory peaks."""
    result = {"setup": {}, "cases": {}}
    for w in workers:
        result["setup"][w.lib] = w.ask("setup", model=name, weights=weights)
    result["parity"] = _check_parity(result["setup"]["torchlite"]["parity"], result["setup"]["torch"]["parity"])
    if not result["parity"]["ok"]:
        log(f"  WARNING: {name}: torchlite and torch disagree: {result['parity']}")
    for mode, steps in (("train", args.train_steps), ("infer", args.infer_steps)):
        for w in workers:  # warm-up round, discarded
            w.ask("time", mode=mode, steps=max(steps, 2))
        rounds = {lib: [] for lib in LIBS}
        ratios = []
        busy = []
        for r in range(args.repeats):
            for w in workers:
                # Also lets the other worker's BLAS threads go to sleep: OpenBLAS spins ~0.1 s after a call.
                busy.append(wait_until_quiet(args.max_wait))
                times = w.ask("time", mode=mode, steps=steps)["times"]
                rounds[w.lib].append(statistics.median(times))
            ratios.append(rounds["torchlite"][-1] / rounds["torch"][-1])
        case = {"rounds_s": rounds, "ratios": ratios, "steps_per_round": steps, "busy_before_round": busy,
                "batch": TRAIN_BATCH if mode == "train" else INFER_BATCH}
        result["cases"][mode] = case
        m_tl, m_th, m_r = (_median_iqr(v)[0] for v in (rounds["torchlite"], rounds["torch"], ratios))
        log(f"  {name} {mode}: torchlite {1e3 * m_tl:.2f} ms, torch {1e3 * m_th:.2f} ms, ratio {m_r:.2f}")
    result["memory"] = {w.lib: w.ask("memory") for w in workers}
    return result


# ------------------------------------------------------------------------------- report
def _fmt_ms(values):
    m, q1, q3 = _median_iqr([1e3 * v for v in values])
    return f"{m:.2f} ({q1:.2f}–{q3:.2f})"


def _fmt_ratio(values):
    m, q1, q3 = _median_iqr(values)
    return f"**{m:.2f}** ({q1:.2f}–{q3:.2f})"


def _verdict(value, target, below=True):
    if target is None:
        return "—", ""
    ok = value <= target if below else value < target
    return (f"≤ {target}" if below else f"< {target}"), ("yes" if ok else "**no**")


def report(results):
    """The markdown report, as a list of lines."""
    env = results["environment"]
    out = [f"### torchlite {env['torchlite']['version']} vs torch {env['torch']['version']} "
           f"({env['threads']} threads, {env['cpu']})", ""]
    for b in env["torchlite"]["blas"]:
        if b["user_api"] == "blas":
            owner = "scipy" if "scipy.libs" in (b["filepath"] or "") else "numpy"
            out.append(f"- torchlite: {owner} {env['torchlite'][owner]} "
                       f"BLAS {b['internal_api']} {b['version']}, {b['architecture']} kernel, "
                       f"{b['threading_layer']}, num_threads {b['num_threads']}")
    out.append(f"- torch: {env['torch']['config']}, torch.get_num_threads() {env['torch']['num_threads']}")
    out.append(f"- rounds {env['repeats']} (A B alternating), median (IQR) over rounds; each round is the median "
               f"of its steps; load average at start {env['loadavg'][0]:.2f}")
    busy = [b for r in results["models"].values() for c in r["cases"].values() for b in c["busy_before_round"]]
    if busy and busy[0] is not None:
        noisy = sum(b >= BUSY_THRESHOLD for b in busy)
        out.append(f"- before each round it waited up to {env['max_wait']:g} s for the CPUs to be under "
                   f"{BUSY_THRESHOLD:.0%} busy: {noisy} of {len(busy)} rounds still started on a busy machine"
                   + (" (their times are inflated, compare with care)" if noisy else ""))
    out.append("")
    out += ["**Training step** (batch 64: forward, CrossEntropyLoss, backward, SGD momentum step)", "",
            "| model | torchlite ms | torch ms | ratio torchlite/torch | target | met |",
            "| --- | ---: | ---: | ---: | ---: | :---: |"]
    for name, res in results["models"].items():
        c = res["cases"]["train"]
        target, met = _verdict(statistics.median(c["ratios"]), TARGETS[(name, "train")])
        out.append(f"| {name} | {_fmt_ms(c['rounds_s']['torchlite'])} | {_fmt_ms(c['rounds_s']['torch'])} | "
                   f"{_fmt_ratio(c['ratios'])} | {target} | {met} |")
    out += ["", "**Inference** (batch 1000, no_grad, eval mode)", "",
            "| model | torchlite ms | torch ms | torchlite s/10k img | torch s/10k img | ratio | target | met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for name, res in results["models"].items():
        c = res["cases"]["infer"]
        per10k = {lib: statistics.median(c["rounds_s"][lib]) * 10_000 / c["batch"] for lib in LIBS}
        target, met = _verdict(statistics.median(c["ratios"]), TARGETS[(name, "infer")])
        out.append(f"| {name} | {_fmt_ms(c['rounds_s']['torchlite'])} | {_fmt_ms(c['rounds_s']['torch'])} | "
                   f"{per10k['torchlite']:.3f} | {per10k['torch']:.3f} | {_fmt_ratio(c['ratios'])} | "
                   f"{target} | {met} |")
    out += ["", "**Peak RSS** of each worker process (MB; per model: peak while that model ran, VmHWM)", "",
            "| | torchlite MB | torch MB | ratio | target | met |", "| --- | ---: | ---: | ---: | ---: | :---: |"]
    mem = results["memory"]
    out.append(f"| after import | {mem['torchlite']['after_import_mb']:.0f} | {mem['torch']['after_import_mb']:.0f} "
               f"| {mem['torchlite']['after_import_mb'] / mem['torch']['after_import_mb']:.2f} | | |")
    for name, res in results["models"].items():
        a, b = res["memory"]["torchlite"]["hwm_mb"], res["memory"]["torch"]["hwm_mb"]
        out.append(f"| {name} | {a:.0f} | {b:.0f} | {a / b:.2f} | | |")
    a, b = mem["torchlite"]["peak_mb"], mem["torch"]["peak_mb"]
    target, met = _verdict(a / b, RSS_TARGET_RATIO)
    out.append(f"| **whole run** (ru_maxrss) | {a:.0f} | {b:.0f} | **{a / b:.2f}** | {target} | {met} |")
    imp = results["imports"]
    out += ["", f"**Import time**, fresh interpreter, median (IQR) of {len(imp['torchlite']['import_s'])}", "",
            "| library | `import` s | whole `python -c` s | target | met |", "| --- | ---: | ---: | ---: | :---: |"]
    for lib in LIBS:
        m, q1, q3 = _median_iqr(imp[lib]["import_s"])
        target, met = _verdict(m, IMPORT_TARGET_S, below=False) if lib == "torchlite" else ("", "")
        out.append(f"| {lib} | {m:.3f} ({q1:.3f}–{q3:.3f}) | {statistics.median(imp[lib]['process_s']):.3f} | "
                   f"{target} | {met} |")
    bad = [n for n, r in results["models"].items() if not r["parity"]["ok"]]
    out += ["", "Parity (same weights and data, 3 SGD steps): " + ", ".join(
        f"{n} loss rel diff {r['parity']['loss_rel']:.1e}, logits abs diff {r['parity']['logits_abs']:.1e}"
        for n, r in results["models"].items()) + (f". **MISMATCH: {bad}**" if bad else ".")]
    return out


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    from models import MODELS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads for both libraries (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="alternating rounds per case (default 10; --quick 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: few rounds and steps")
    p.add_argument("--max-wait", type=float, default=None,
                   help="seconds to wait before each round for other processes to go quiet (default 60; --quick 0)")
    p.add_argument("--only", default=",".join(MODELS), help=f"comma-separated models (default {','.join(MODELS)})")
    p.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"),
                   help="where to write all numbers ('' for nowhere)")
    p.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.threads)

    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"--only: unknown model(s) {unknown}; choose from {list(MODELS)}")
    args.repeats = args.repeats or (3 if args.quick else 10)
    args.train_steps, args.infer_steps = (3, 1) if args.quick else (10, 3)
    if args.max_wait is None:
        args.max_wait = 0 if args.quick else 60

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            log(f"note: {var}={os.environ[var]} is set and forces numpy's OpenBLAS kernel; "
                "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for the detected one")
    loadavg = os.getloadavg()
    if loadavg[0] > 0.5:
        log(f"note: load average {loadavg[0]:.2f}: other processes are running; each round waits up to "
            f"{args.max_wait:g} s for quiet CPUs")
    env = _child_env(args.threads)
    log("import times ...")
    imports = measure_imports(2 if args.quick else 7, env, args.max_wait)
    workers = [Worker(lib, args.threads, env) for lib in LIBS]
    results = {"environment": {"threads": args.threads, "cpu": _cpu_name(), "python": platform.python_version(),
                               "loadavg": loadavg, "repeats": args.repeats, "max_wait": args.max_wait,
                               "quick": args.quick,
                               "train_steps_per_round": args.train_steps, "infer_steps_per_round": args.infer_steps,
                               **{w.lib: w.ready["info"] for w in workers}},
               "imports": imports, "models": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                log(f"{name} ...")
                weights = os.path.join(tmp, f"{name}.npz")
                workers[0].ask("save_weights", model=name, path=weights, seed=0)
                results["models"][name] = benchmark_model(name, workers, weights, args, log)
    finally:
        final = {}
        for w in workers:
            try:
                final[w.lib] = w.close()["memory"]
            except (OSError, RuntimeError, ValueError):
                w.proc.kill()
    results["memory"] = {w.lib: {"after_import_mb": w.ready["memory"]["rss_mb"],
                                 "peak_mb": final[w.lib]["maxrss_mb"]} for w in workers}
    print("\n".join(report(results)))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        log(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    sys.exit(main())
