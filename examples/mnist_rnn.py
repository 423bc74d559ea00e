"""Classify MNIST digits by reading each image row by row with an LSTM or a GRU.

    python examples/mnist_rnn.py                          # LSTM, 128 hidden: 98.4% test accuracy in 3 epochs
    python examples/mnist_rnn.py --model gru --save run.npz
    python examples/mnist_rnn.py --resume run.npz --epochs 5 --save run.npz

Each 28x28 image is a sequence of 28 steps of 28 pixels. The recurrent layer's last hidden
state h_n goes to a Linear layer that gives the class logits. Backward shows the recurrent
API: no gradient reaches the per-step outputs (None), only h_n, and backpropagation through
time runs inside ``rnn.backward``. Gradients are clipped by global norm before each Adam step.
"""
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
from _common import (add_run_args, add_training_args, checkpoint_state, end_epoch, evaluate, load_mnist, report,
                     restore, resume_settings, run_parser)
from torchlite.data import DataLoader
from torchlite.progress import History, ProgressBar

# What defines a run: on --resume these come from the checkpoint, not from the command line.
RUN_SETTINGS = ("model", "batch_size", "lr", "lr_decay", "hidden", "layers", "clip", "seed", "dataset", "limit_train")


class RowReader(nn.Module):
    """(N, 28, 28) images -> LSTM/GRU over the 28 rows -> Linear on the last layer's h_n -> (N, 10) logits."""

    def __init__(self, model="lstm", hidden=128, layers=1, rows=28, classes=10):
        super().__init__()
        self.rnn = (nn.LSTM if model == "lstm" else nn.GRU)(rows, hidden, layers, batch_first=True)
        self.rnn.needs_input_grad = False  # its input is data
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(self.rnn, nn.LSTM) else state
        self.save_for_backward(h_n.shape)
        return self.fc(h_n[-1])

    def backward(self, grad_output):
        (shape,) = self.pop_saved()
        grad_h = np.zeros(shape, dtype=self.fc.weight.dtype)
        grad_h[-1] = self.fc.backward(grad_output)
        # Upstream has forward's nesting: (output, h_n) or (output, (h_n, c_n)); None where no gradient flows.
        self.rnn.backward(None, (grad_h, None) if isinstance(self.rnn, nn.LSTM) else grad_h)


def parse_args(argv=None):
    p = run_parser(__doc__)
    p.add_argument("--model", choices=("lstm", "gru"), default="lstm")
    add_training_args(p, epochs=3, batch_size=128, lr=5e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--clip", type=float, default=1.0, help="max global gradient norm (0: no clipping)")
    add_run_args(p)
    return p.parse_args(argv)


def rows(x):
    """A batch of (N, 1, 28, 28) images as (N, 28 steps, 28 pixels)."""
    return x.reshape(len(x), x.shape[-2], x.shape[-1])


def train_epoch(model, criterion, opt, loader, clip, epoch, epochs):
    """One pass over ``loader``; returns (progress bar, mean loss, accuracy). Exits on a NaN/inf loss."""
    model.train()
    bar = ProgressBar(len(loader), desc=f"epoch {epoch}/{epochs}")
    loss_sum = correct = seen = 0
    for step, (x, y) in enumerate(loader, 1):
        opt.zero_grad()
        logits = model(rows(x))
        loss = float(criterion(logits, y))
        if not np.isfinite(loss):
            sys.exit(f"mnist_rnn: the loss is {loss} at epoch {epoch}, step {step}: training diverged; "
                     "try a smaller --lr or --clip")
        model.backward(criterion.backward())
        if clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        loss_sum += loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.update(loss=loss)
    return bar, loss_sum / seen, correct / seen


def main(argv=None):
    args = parse_args(argv)
    ckpt = resume_settings(args, RUN_SETTINGS)
    torchlite.manual_seed(args.seed)
    train_set, test_set = load_mnist(args)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = RowReader(args.model, args.hidden, args.layers)
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.ExponentialLR(opt, gamma=args.lr_decay)
    history = History()
    start = restore(ckpt, args.resume, model, opt, scheduler, history)
    print(f"{args.dataset}: {len(train_set)} train / {len(test_set)} test images, read row by row; model {model}; "
          f"adam lr {args.lr} decay {args.lr_decay}/epoch, clip {args.clip}, batch {args.batch_size}")

    started = time.perf_counter()
    for epoch in range(start, args.epochs + 1):
        bar, train_loss, train_acc = train_epoch(model, criterion, opt, train_loader, args.clip, epoch, args.epochs)
        test_loss, test_acc = evaluate(model, criterion, test_loader, rows)
        end_epoch(history, scheduler, bar, epoch, train_loss, train_acc, test_loss, test_acc)
        if args.save:
            torchlite.save(checkpoint_state(model, opt, scheduler, epoch, history, args, RUN_SETTINGS), args.save)
    report(history, started)
    return history


if __name__ == "__main__":
    main()
