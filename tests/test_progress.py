"""torchlite.progress: the progress bar's output on terminals and in logs, and History."""
import io
import sys
import types

import numpy as np
import pytest

import torchlite
from torchlite.progress import History, ProgressBar


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_log_output_is_sparse():
    out = io.StringIO()
    bar = ProgressBar(total=100, desc="epoch 1/3", file=out)
    for i in range(100):
        bar.update(loss=float(i))
    assert out.getvalue() == ""  # nothing until close when the interval has not passed
    bar.close(test_acc=0.975)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()
    line = lines[0]
    assert line.startswith("epoch 1/3") and "100/100" in line and "100%" in line
    assert "ms/batch" in line and "loss 49.5000" in line and "test_acc 0.9750" in line


def test_log_lines_every_interval():
    out = io.StringIO()
    bar = ProgressBar(total=4, file=out, interval=0.0)
    for _ in range(4):
        bar.update()
    assert len(out.getvalue().splitlines()) == 4
    assert out.getvalue().splitlines()[1].split()[0] == "2/4"


def test_terminal_redraws_in_place():
    out = _Tty()
    bar = ProgressBar(total=10, desc="train", file=out)
    bar.update(loss=123456.0)
    bar.update(3, loss=1.0)  # within 0.1 s: not drawn
    text = out.getvalue()
    assert text.startswith("\r") and "\n" not in text and " 1/10" in text and "ETA" in text
    first_width = len(text) - 1
    bar.close()
    final = out.getvalue()[len(text):]
    assert final.startswith("\r") and final.endswith("\n") and " 4/10" in final
    assert len(final) - 2 >= first_width  # padded to wipe the longer previous line
    assert "loss 6.173e+04" in final  # mean of 123456 and 1


def test_unknown_total_bytes_and_disable():
    out = io.StringIO()
    bar = ProgressBar(total=None, unit="B", file=out)
    bar.update(2_500_000)
    bar.close()
    assert "2.5 MB" in out.getvalue() and "MB/s" in out.getvalue() and "%" not in out.getvalue()
    out = io.StringIO()
    bar = ProgressBar(total=3_000_000, unit="B", file=out, desc="f.gz")
    bar.update(1_500_000)
    bar.close()
    assert "1.5/3.0 MB" in out.getvalue() and "50%" in out.getvalue()
    quiet = io.StringIO()
    bar = ProgressBar(total=2, file=quiet, disable=True, interval=0.0)
    bar.update()
    bar.close()
    assert quiet.getvalue() == "" and bar.n == 1


def test_default_stream_is_stderr(capsys):
    bar = ProgressBar(total=1, desc="x")
    bar.update()
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("x")


def test_history_rows_and_checks():
    h = History()
    assert len(h) == 0 and h.last() == {}
    h.append(epoch=1, train_loss=np.float32(0.5), test_acc=0.9)
    h.append(epoch=2, train_loss=0.25, test_acc=np.float64(0.95))
    assert len(h) == 2 and h["train_loss"] == [0.5, 0.25] and "test_acc" in h
    assert type(h["train_loss"][0]) is float
    assert h.last() == {"epoch": 2, "train_loss": 0.25, "test_acc": 0.95}
    with pytest.raises(ValueError, match="expected the keys"):
        h.append(epoch=3, train_loss=0.1)
    assert "2 epochs" in repr(h)


def test_history_checkpoint_round_trip(tmp_path):
    h = History()
    for e in range(3):
        h.append(epoch=e + 1, train_loss=1.0 / (e + 1), test_acc=0.9 + e / 100)
    torchlite.save({"history": h.state_dict()}, tmp_path / "h.npz")
    back = History.from_state_dict(torchlite.load(tmp_path / "h.npz")["history"])
    assert back.state_dict() == h.state_dict()
    with pytest.raises(ValueError, match="different lengths"):
        History.from_state_dict({"a": [1, 2], "b": [1]})


def test_history_plot_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    h = History()
    h.append(epoch=1, train_loss=1.0, test_acc=0.5)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        h.plot(tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_history_plot_draws_loss_and_accuracy(monkeypatch, tmp_path):
    """With a stand-in for matplotlib's Figure: which series go on which axes, and where it is saved."""
    calls = {"lines": {0: [], 1: []}}

    class Axes:
        def __init__(self, i):
            self.i, self.lines = i, []

        def plot(self, xs, ys, marker=None, label=None):
            calls["lines"][self.i].append((label, list(xs), list(ys)))
            self.lines.append(label)

        def __getattr__(self, name):
            return lambda *a, **k: None

    class Figure:
        def __init__(self, **kwargs):
            pass

        def subplots(self, rows, cols):
            return [Axes(0), Axes(1)]

        def savefig(self, path, dpi=None):
            calls["saved"] = path

    fake = types.ModuleType("matplotlib.figure")
    fake.Figure = Figure
    monkeypatch.setitem(sys.modules, "matplotlib", types.ModuleType("matplotlib"))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", fake)
    h = History()
    h.append(epoch=1, train_loss=1.0, test_loss=1.2, train_acc=0.5, test_acc=0.4, lr=0.1)
    h.append(epoch=2, train_loss=0.5, test_loss=0.7, train_acc=0.8, test_acc=0.7, lr=0.05)
    h.plot(tmp_path / "h.png")
    assert calls["saved"] == tmp_path / "h.png"
    assert [c[0] for c in calls["lines"][0]] == ["train_loss", "test_loss"]
    assert [c[0] for c in calls["lines"][1]] == ["train_acc", "test_acc"]
    assert calls["lines"][1][1] == ("test_acc", [1, 2], [0.4, 0.7])
