"""Train a fully connected network on MNIST (or Fashion-MNIST) with a hand-written training loop.

    python examples/mnist_fnn.py                         # 784-512-256-10 MLP, >= 98% test accuracy
    python examples/mnist_fnn.py --save run.npz          # checkpoint after every epoch
    python examples/mnist_fnn.py --resume run.npz --epochs 8 --save run.npz   # go on to epoch 8
    python examples/predict.py run.npz --index 0         # classify a test image with the checkpoint

The loop is the point of the library: forward, loss, ``model.backward(criterion.backward())``,
``opt.step()``, every gradient computed by code you can read. A checkpoint holds the model,
optimizer and scheduler state, the epoch, the metrics history and the random generator's state,
so a resumed run is bit for bit the run that was not interrupted. The learning-rate schedule
(decay by ``--lr-decay`` each epoch) does not depend on the total number of epochs, so a run
can also be extended past its planned end.

Speed: about 20 s of CPU time for the default 6 epochs (98.3% test accuracy). On a machine
whose cores are busy with other work, a multi-threaded BLAS can slow down several times
(threads wait on each other); ``OPENBLAS_NUM_THREADS=1`` avoids that.
"""
import contextlib
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
from _common import (add_optimizer_args, add_run_args, add_training_args, check_plot, checkpoint_state, end_epoch,
                     evaluate, load_mnist, make_optimizer, report, restore, resume_settings, run_parser)
from torchlite.data import DataLoader
from torchlite.progress import History, ProgressBar

# What defines a run: on --resume these come from the checkpoint, not from the command line.
RUN_SETTINGS = ("batch_size", "lr", "lr_decay", "optimizer", "momentum", "weight_decay", "hidden", "dropout",
                "seed", "dataset", "limit_train")


def build_model(hidden=(512, 256), dropout=0.2, in_features=784, classes=10):
    """Linear -> ReLU -> Dropout for each hidden width, then a Linear to the class logits."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, classes))
    model = nn.Sequential(*layers)
    model.needs_input_grad = False  # its input is data: the first layer skips dLoss/dInput
    return model


def parse_args(argv=None):
    p = run_parser(__doc__)
    add_training_args(p, epochs=6, batch_size=128, lr=2e-3)
    add_optimizer_args(p)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 256], help="hidden layer widths")
    p.add_argument("--dropout", type=float, default=0.2)
    add_run_args(p, plot=True)
    p.add_argument("--detect-anomaly", action="store_true",
                   help="check every layer's outputs and gradients for NaN/inf (slower)")
    args = p.parse_args(argv)
    check_plot(p, args)
    return args


def flatten(x):
    """A batch of (N, 1, 28, 28) images as (N, 784) rows."""
    return x.reshape(len(x), -1)


def train_epoch(model, criterion, opt, loader, epoch, epochs):
    """One pass over ``loader``; returns (progress bar, mean loss, accuracy). Exits on a NaN/inf loss."""
    model.train()
    bar = ProgressBar(len(loader), desc=f"epoch {epoch}/{epochs}")
    loss_sum = correct = seen = 0
    for step, (x, y) in enumerate(loader, 1):
        opt.zero_grad()
        logits = model(flatten(x))
        loss = float(criterion(logits, y))
        if not np.isfinite(loss):
            sys.exit(f"mnist_fnn: the loss is {loss} at epoch {epoch}, step {step}: training diverged. "
                     "Try a smaller --lr, or --detect-anomaly to find the layer where it starts.")
        model.backward(criterion.backward())
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

    model = build_model(args.hidden, args.dropout)
    criterion = nn.CrossEntropyLoss()
    opt = make_optimizer(args, model.parameters())
    scheduler = optim.lr_scheduler.ExponentialLR(opt, gamma=args.lr_decay)
    history = History()
    start = restore(ckpt, args.resume, model, opt, scheduler, history)
    print(f"{args.dataset}: {len(train_set)} train / {len(test_set)} test images; {args.optimizer} lr {args.lr} "
          f"decay {args.lr_decay}/epoch, batch {args.batch_size}\n{model}")

    started = time.perf_counter()
    anomaly = torchlite.detect_anomaly() if args.detect_anomaly else contextlib.nullcontext()
    with anomaly:
        for epoch in range(start, args.epochs + 1):
            bar, train_loss, train_acc = train_epoch(model, criterion, opt, train_loader, epoch, args.epochs)
            test_loss, test_acc = evaluate(model, criterion, test_loader, flatten)
            end_epoch(history, scheduler, bar, epoch, train_loss, train_acc, test_loss, test_acc)
            if args.save:
                torchlite.save(checkpoint_state(model, opt, scheduler, epoch, history, args, RUN_SETTINGS), args.save)
    report(history, started, args.plot)
    return history


if __name__ == "__main__":
    main()
