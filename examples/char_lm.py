"""Train a character-level language model (LSTM, GRU or Transformer) on Genesis (KJV) and sample from it.

    python examples/char_lm.py                                     # transformer: val perplexity 4.2 after 5 epochs
    python examples/char_lm.py --model lstm --epochs 2 --save lm.npz   # val perplexity 4.1; checkpoint each epoch
    python examples/char_lm.py --resume lm.npz --epochs 8 --save lm.npz   # go on to epoch 8
    python examples/char_lm.py --resume lm.npz --epochs 0 --sample-len 400 --temperature 0.6   # sample only

The model reads ``seq_len`` characters and predicts each next one. The Transformer is a
decoder-only stack: token embedding (N(0, 1), like the sinusoidal positional encoding added to
it, so neither drowns the other) then a TransformerEncoder (pre-norm layers) under a causal
mask, a final LayerNorm and a Linear to the logits. The recurrent models are Embedding ->
LSTM/GRU -> Linear. Each epoch cuts the training text (the first 90%) into windows at a random
offset, shuffles them, and reports the training loss and the validation loss and perplexity
(exp(loss)) on the last 10%; a uniform guess scores log(vocabulary size) = 4.25 (perplexity
70). An epoch takes about a minute for the transformer and two for the LSTM on 2 busy cores.
Samples continue ``--prompt`` one character at a time from softmax(logits / temperature).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

try:
    import torchlite
except ImportError:  # run from a checkout that was not pip-installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import torchlite
import torchlite.nn as nn
import torchlite.optim as optim

TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "kjv_genesis.txt")
# What defines a run: on --resume these come from the checkpoint, not from the command line.
RUN_SETTINGS = ("model", "batch_size", "seq_len", "lr", "seed", "d_model", "layers", "heads", "hidden", "dropout",
                "clip", "limit_chars")


class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding of "Attention Is All You Need" to (N, L, d_model) inputs."""

    def __init__(self, d_model, max_len=4096):
        super().__init__()
        pos = np.arange(max_len)[:, None]
        freq = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * freq)
        pe[:, 1::2] = np.cos(pos * freq[: d_model // 2])
        self.pe = pe  # a constant, not state: kept out of the state_dict

    def forward(self, x):
        return x + self.pe[: x.shape[1]].astype(x.dtype)

    def backward(self, grad_output):
        return grad_output


class CharTransformer(nn.Module):
    """Decoder-only Transformer: (N, L) character ids -> (N, L, vocab) next-character logits."""

    def __init__(self, vocab, d_model=128, layers=2, heads=4, dropout=0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        self.pos = PositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.fc = nn.Linear(d_model, vocab)

    def forward(self, x):
        L = x.shape[1]
        causal = np.triu(np.ones((L, L), bool), 1)  # True: may not attend (a later position)
        h = self.pos(self.embedding(x))
        return self.fc(self.encoder(h, mask=causal, is_causal=True))

    def backward(self, grad_logits):
        self.embedding.backward(self.pos.backward(self.encoder.backward(self.fc.backward(grad_logits))))


class CharRNN(nn.Module):
    """Embedding -> LSTM or GRU -> Linear: (N, L) character ids -> (N, L, vocab) logits."""

    def __init__(self, vocab, kind="lstm", hidden=256, layers=2, dropout=0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        rnn = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = rnn(hidden, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        """Logits, and the recurrent state for the next call when ``state`` is passed (sampling)."""
        out, new_state = self.rnn(self.embedding(x), state)
        logits = self.fc(out)
        return logits if state is None else (logits, new_state)

    def backward(self, grad_logits):
        g = self.fc.backward(grad_logits)
        self.embedding.backward(self.rnn.backward(g, None))  # no gradient reaches the final state


def build_model(args, vocab):
    if args.model == "transformer":
        return CharTransformer(vocab, args.d_model, args.layers, args.heads, args.dropout)
    return CharRNN(vocab, args.model, args.hidden, args.layers, args.dropout)


def load_text(path, limit=None):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text[:limit] if limit else text


def windows(ids, seq_len, rng):
    """(inputs, targets) of shape (n, seq_len): the text cut at a random offset, windows shuffled."""
    start = int(rng.integers(seq_len)) if len(ids) > 2 * seq_len + 1 else 0
    n = (len(ids) - start - 1) // seq_len
    x = ids[start: start + n * seq_len].reshape(n, seq_len)
    y = ids[start + 1: start + 1 + n * seq_len].reshape(n, seq_len)
    order = rng.permutation(n)
    return x[order], y[order]


def train_epoch(model, criterion, opt, ids, args, epoch):
    model.train()
    rng = torchlite.get_generator()
    x, y = windows(ids, args.seq_len, rng)
    total, batches = 0.0, 0
    for b in range(0, len(x), args.batch_size):
        xb, yb = x[b: b + args.batch_size], y[b: b + args.batch_size]
        opt.zero_grad()
        logits = model(xb)
        loss = float(criterion(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1)))
        if not np.isfinite(loss):
            sys.exit(f"char_lm: the loss is {loss} at epoch {epoch}, batch {batches + 1}: training diverged; "
                     "try a smaller --lr")
        model.backward(criterion.backward().reshape(logits.shape))
        if args.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        total += loss
        batches += 1
    return total / max(batches, 1)


def evaluate(model, criterion, ids, args):
    """Mean next-character loss over consecutive windows of the validation text."""
    model.eval()
    n = (len(ids) - 1) // args.seq_len
    x = ids[: n * args.seq_len].reshape(n, args.seq_len)
    y = ids[1: 1 + n * args.seq_len].reshape(n, args.seq_len)
    total = 0.0
    with torchlite.no_grad():
        for b in range(0, n, args.batch_size):
            logits = model(x[b: b + args.batch_size])
            total += float(criterion(logits.reshape(-1, logits.shape[-1]), y[b: b + args.batch_size].reshape(-1))) \
                * len(x[b: b + args.batch_size])
    return total / n


def sample(model, chars, prompt, length, temperature, seq_len):
    """Continue ``prompt`` by ``length`` characters drawn from softmax(logits / temperature)."""
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in prompt if c in index] or [0]
    rng = torchlite.get_generator()
    model.eval()
    with torchlite.no_grad():
        state = None
        feed = np.array([ids])
        for _ in range(length):
            if isinstance(model, CharRNN):
                logits, state = model(feed, state if state is not None else _zero_state(model, 1))
            else:
                logits = model(np.array([ids[-seq_len:]]))
            z = logits[0, -1].astype(np.float64) / max(temperature, 1e-6)
            p = np.exp(z - z.max())
            nxt = int(rng.choice(len(p), p=p / p.sum()))
            ids.append(nxt)
            feed = np.array([[nxt]])
    return "".join(chars[i] for i in ids)


def _zero_state(model, batch):
    rnn = model.rnn
    h = np.zeros((rnn.num_layers, batch, rnn.hidden_size), dtype=model.fc.weight.dtype)
    return (h, h.copy()) if isinstance(rnn, nn.LSTM) else h


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=("lstm", "gru", "transformer"), default="transformer")
    p.add_argument("--epochs", type=int, default=5, help="train up to this epoch (counting resumed ones)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--d-model", type=int, default=128, help="transformer width")
    p.add_argument("--heads", type=int, default=4, help="transformer attention heads")
    p.add_argument("--hidden", type=int, default=256, help="lstm/gru hidden size (and embedding size)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="max global gradient norm (0: no clipping)")
    p.add_argument("--text", default=TEXT, help="UTF-8 text file to train on")
    p.add_argument("--limit-chars", type=int, default=None, help="use only the first N characters of the text")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here after every epoch")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (lower: safer)")
    p.add_argument("--sample-len", type=int, default=300, help="characters to sample after training (0: none)")
    p.add_argument("--prompt", default="And God said")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ckpt = torchlite.load(args.resume) if args.resume else None
    if ckpt is not None:
        for key in RUN_SETTINGS:
            setattr(args, key, ckpt["args"][key])

    torchlite.manual_seed(args.seed)
    text = load_text(args.text, args.limit_chars)
    chars = ckpt["chars"] if ckpt is not None else "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index.get(c, 0) for c in text], dtype=np.int64)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]

    model = build_model(args, len(chars))
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    start = 1
    history = []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        torchlite.set_rng_state(ckpt["rng"])
        history = list(ckpt["history"])
        start = ckpt["epoch"] + 1
        print(f"resuming {args.resume} after epoch {ckpt['epoch']} (run settings from the checkpoint)")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{os.path.basename(args.text)}: {len(train_ids)} train / {len(val_ids)} val characters, vocabulary "
          f"{len(chars)} (uniform loss {math.log(len(chars)):.3f}); {args.model} with {n_params} parameters")

    for epoch in range(start, args.epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(model, criterion, opt, train_ids, args, epoch)
        val_loss = evaluate(model, criterion, val_ids, args)
        history.append(dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss))
        print(f"epoch {epoch}/{args.epochs}: train loss {train_loss:.3f} (perplexity {math.exp(train_loss):.2f}), "
              f"val loss {val_loss:.3f} (perplexity {math.exp(val_loss):.2f})  [{time.perf_counter() - started:.1f} s]",
              flush=True)
        if args.save:
            torchlite.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                            "rng": torchlite.get_rng_state(), "chars": chars,
                            "history": history,
                            "args": {k: getattr(args, k) for k in RUN_SETTINGS}}, args.save)
    if args.sample_len > 0:
        print(f"--- sample (temperature {args.temperature}) ---")
        print(sample(model, chars, args.prompt, args.sample_len, args.temperature, args.seq_len))
    return history


if __name__ == "__main__":
    main()
