"""examples/char_lm.py on the shipped text with a tiny budget: the loss must fall well below uniform guessing."""
import importlib.util
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ["--limit-chars", "12000", "--seq-len", "32", "--batch-size", "16", "--d-model", "32", "--heads", "2",
        "--hidden", "48", "--layers", "1", "--lr", "1e-2", "--dropout", "0"]


def _char_lm():
    spec = importlib.util.spec_from_file_location("char_lm", ROOT / "examples" / "char_lm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_text_is_there_with_its_provenance():
    text = (ROOT / "examples" / "data" / "kjv_genesis.txt").read_text(encoding="utf-8")
    assert len(text) > 200_000 and text.lstrip().startswith("Genesis 1")
    assert "bible-kjv-text" in (ROOT / "examples" / "data" / "README.md").read_text()


@pytest.mark.parametrize("model", ["transformer", "lstm", "gru"])
def test_loss_falls_well_below_uniform(model, capsys):
    history = _char_lm().main(["--model", model, "--epochs", "2", "--sample-len", "40", *TINY])
    out = capsys.readouterr().out
    vocab = int(out.split("vocabulary ")[1].split()[0])
    uniform = math.log(vocab)
    assert history[0]["train_loss"] > history[-1]["train_loss"]
    assert history[-1]["val_loss"] < 0.7 * uniform, (history, uniform)
    assert "val loss" in out and "perplexity" in out
    sample = out.split("--- sample (temperature 0.8) ---\n")[1]
    assert sample.startswith("And God said") and len(sample.rstrip("\n")) == len("And God said") + 40


def test_resume_continues_the_same_run(tmp_path, capsys):
    lm = _char_lm()
    small = [*TINY[:1], "4000", *TINY[2:], "--model", "transformer", "--sample-len", "0"]
    straight = lm.main(["--epochs", "2", *small])
    ckpt = str(tmp_path / "lm.npz")
    lm.main(["--epochs", "1", "--save", ckpt, *small])
    resumed = lm.main(["--epochs", "2", "--resume", ckpt, "--save", ckpt, *small])
    assert "resuming" in capsys.readouterr().out
    assert [h["epoch"] for h in resumed] == [1, 2]
    assert resumed[-1]["train_loss"] == straight[-1]["train_loss"]
    assert resumed[-1]["val_loss"] == straight[-1]["val_loss"]
    only_sample = lm.main(["--epochs", "0", "--resume", ckpt, "--sample-len", "20", "--temperature", "0.5"])
    assert len(only_sample) == 2 and "And God said" in capsys.readouterr().out
