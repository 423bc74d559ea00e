"""Training feedback without dependencies: a progress bar for loops and a History of epoch metrics.

``ProgressBar`` writes to stderr. On a terminal it redraws one line with ``\\r`` (at most ten
times a second); otherwise (CI logs, pipes) it prints a line only every ``interval`` seconds
and a final one from ``close()``, so logs stay short.

    bar = ProgressBar(len(loader), desc="epoch 1/5")
    for x, y in loader:
        ...
        bar.update(loss=loss)          # running means of the metrics are shown
    bar.close(test_acc=0.981)          # final line, with extra numbers

``History`` collects one row of metrics per epoch, goes into a checkpoint as a dict of lists,
and plots itself to a PNG (matplotlib, imported only then).
"""
import math
import sys
import time

__all__ = ["ProgressBar", "History"]


def _format_duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _format_number(value):
    value = float(value)
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"


class ProgressBar:
    """Progress of ``total`` steps: done/total, time per step, ETA and running means of metrics.

    Args:
        total: number of steps (None when unknown: no ETA).
        desc: text shown first (e.g. ``"epoch 2/10"``).
        unit: name of a step (``"batch"``); ``"B"`` shows bytes as MB and MB/s (downloads).
        file: stream to write to (default ``sys.stderr``).
        interval: seconds between lines when ``file`` is not a terminal.
        disable: write nothing.
    """

    def __init__(self, total=None, desc="", unit="batch", file=None, interval=30.0, disable=False):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = sys.stderr if file is None else file
        self.interval = interval
        self.disable = disable
        self.n = 0
        self._sums = {}
        self._counts = {}
        self._start = time.perf_counter()
        self._width = 0
        isatty = getattr(self.file, "isatty", None)
        self._tty = bool(isatty and isatty())
        # Off a terminal the first line waits a whole interval: short loops print only close().
        self._last_draw = -math.inf if self._tty else self._start

    @property
    def elapsed(self):
        return time.perf_counter() - self._start

    @property
    def metrics(self):
        """Running means of the metrics given to ``update``."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums}

    def update(self, n=1, **metrics):
        """Advance by ``n`` steps and add values to the running means of ``metrics``."""
        self.n += n
        for key, value in metrics.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
            self._counts[key] = self._counts.get(key, 0) + 1
        now = time.perf_counter()
        if now - self._last_draw >= (0.1 if self._tty else self.interval):
            self._draw(now)

    def close(self, **extra):
        """Write the final line (with ``extra`` numbers, e.g. test accuracy) and end it."""
        if self.disable:
            return
        self._write(self.format(extra), end="\n")

    def format(self, extra=None):
        """The status line as text."""
        elapsed = self.elapsed
        parts = [self.desc] if self.desc else []
        if self.unit == "B":
            done = f"{self.n / 1e6:.1f}" + (f"/{self.total / 1e6:.1f} MB" if self.total else " MB")
            rate = f"{self.n / 1e6 / elapsed:.2f} MB/s" if elapsed > 0 else ""
        else:
            width = len(str(self.total)) if self.total else 1
            done = f"{self.n:>{width}}/{self.total}" if self.total else f"{self.n}"
            rate = f"{1000 * elapsed / self.n:.1f} ms/{self.unit}" if self.n else ""
        parts.append(done)
        if self.total:
            parts.append(f"{100 * self.n / self.total:3.0f}%")
        if rate:
            parts.append(rate)
        if self.total and 0 < self.n < self.total:
            parts.append(f"ETA {_format_duration(elapsed * (self.total - self.n) / self.n)}")
        else:
            parts.append(_format_duration(elapsed))
        parts += [f"{k} {_format_number(v)}" for k, v in self.metrics.items()]
        parts += [f"{k} {_format_number(v)}" for k, v in (extra or {}).items()]
        return "  ".join(parts)

    def _draw(self, now):
        self._last_draw = now
        if self.disable:
            return
        self._write(self.format(), end="" if self._tty else "\n")

    def _write(self, line, end):
        if self._tty:
            # \r returns to the line start; pad to wipe a longer previous line.
            self.file.write("\r" + line.ljust(self._width) + end)
            self._width = 0 if end else len(line)
        else:
            self.file.write(line + end)
        self.file.flush()


class History:
    """Per-epoch metrics: ``append(epoch=1, train_loss=..., test_acc=...)`` adds one row.

    Every row has the keys of the first one. ``h["test_acc"]`` is a list; ``state_dict()`` is a
    dict of lists (for ``torchlite.save``), ``History.from_state_dict`` builds it back.
    """

    def __init__(self):
        self.columns = {}

    def append(self, **metrics):
        if self.columns and set(metrics) != set(self.columns):
            raise ValueError(f"History.append: expected the keys {sorted(self.columns)}, got {sorted(metrics)}")
        if not self.columns:
            self.columns = {k: [] for k in metrics}
        for key, value in metrics.items():
            self.columns[key].append(value.item() if hasattr(value, "item") else value)

    def __getitem__(self, key):
        return self.columns[key]

    def __contains__(self, key):
        return key in self.columns

    def __len__(self):
        return len(next(iter(self.columns.values()), []))

    def last(self):
        """The latest row as a dict (empty when there is none)."""
        return {k: v[-1] for k, v in self.columns.items()} if len(self) else {}

    def state_dict(self):
        return {k: list(v) for k, v in self.columns.items()}

    def load_state_dict(self, state_dict):
        lengths = {len(v) for v in state_dict.values()}
        if len(lengths) > 1:
            raise ValueError(f"History.load_state_dict: columns of different lengths {sorted(lengths)}")
        self.columns = {k: [x.item() if hasattr(x, "item") else x for x in v] for k, v in state_dict.items()}

    @classmethod
    def from_state_dict(cls, state_dict):
        h = cls()
        h.load_state_dict(state_dict)
        return h

    def __repr__(self):
        return f"History({len(self)} epochs: {', '.join(self.columns)})"

    def plot(self, path, x="epoch"):
        """Save the loss columns (``*loss``) and accuracy columns (``*acc*``) side by side as a PNG."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("History.plot needs matplotlib, which is not installed: pip install matplotlib") from None
        xs = self.columns.get(x, list(range(1, len(self) + 1)))
        fig = Figure(figsize=(10, 4), layout="tight")
        for ax, kind in zip(fig.subplots(1, 2), ("loss", "acc")):
            for key, values in self.columns.items():
                if key != x and kind in key:
                    ax.plot(xs, values, marker="o", label=key)
            ax.set_xlabel(x)
            if len(xs) <= 20:
                ax.set_xticks(xs)
            ax.set_ylabel("accuracy" if kind == "acc" else "loss")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend()
        fig.savefig(path, dpi=100)
