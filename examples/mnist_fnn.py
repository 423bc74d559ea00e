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
import argparse
import contextlib
import importlib.util
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
from torchlite.data import DataLoader, Subset
from torchlite.data.datasets import MNIST, DatasetNotFoundError, FashionMNIST
from torchlite.progress import History, ProgressBar

REPO_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data"))
DATASETS = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
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


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                         weight_decay=args.weight_decay)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=6, help="train up to this epoch (counting resumed ones)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-decay", type=float, default=0.6, help="learning rate factor after each epoch")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 256], help="hidden layer widths")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=REPO_DATA, help="folder holding mnist/ (and fashion-mnist/)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here after every epoch")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    p.add_argument("--plot", metavar="PATH", help="save loss and accuracy curves as a PNG (needs matplotlib)")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="check every layer's outputs and gradients for NaN/inf (slower)")
    args = p.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install matplotlib")
    return args


def train_epoch(model, criterion, opt, loader, epoch, epochs):
    """One pass over ``loader``; returns (progress bar, mean loss, accuracy). Exits on a NaN/inf loss."""
    model.train()
    bar = ProgressBar(len(loader), desc=f"epoch {epoch}/{epochs}")
    loss_sum = correct = seen = 0
    for step, (x, y) in enumerate(loader, 1):
        opt.zero_grad()
        logits = model(x.reshape(len(x), -1))
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


def evaluate(model, criterion, loader):
    """(mean loss, accuracy) over ``loader``, without keeping anything for backward."""
    model.eval()
    loss_sum = correct = seen = 0
    with torchlite.no_grad():
        for x, y in loader:
            logits = model(x.reshape(len(x), -1))
            loss_sum += float(criterion(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
    return loss_sum / seen, correct / seen


def main(argv=None):
    args = parse_args(argv)
    ckpt = torchlite.load(args.resume) if args.resume else None
    if ckpt is not None:
        for key in RUN_SETTINGS:
            setattr(args, key, ckpt["args"][key])

    torchlite.manual_seed(args.seed)
    dataset = DATASETS[args.dataset]
    try:
        train_set = dataset(root=args.data, train=True)
        test_set = dataset(root=args.data, train=False)
    except DatasetNotFoundError as e:
        sys.exit(str(e))
    if args.limit_train:
        train_set = Subset(train_set, range(min(args.limit_train, len(train_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_model(args.hidden, args.dropout)
    criterion = nn.CrossEntropyLoss()
    opt = make_optimizer(args, model.parameters())
    scheduler = optim.lr_scheduler.ExponentialLR(opt, gamma=args.lr_decay)
    history = History()
    start = 1
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history.load_state_dict(ckpt["history"])
        torchlite.set_rng_state(ckpt["rng"])
        start = ckpt["epoch"] + 1
        print(f"resuming {args.resume} after epoch {ckpt['epoch']} (run settings from the checkpoint)")
    print(f"{args.dataset}: {len(train_set)} train / {len(test_set)} test images; {args.optimizer} lr {args.lr} "
          f"decay {args.lr_decay}/epoch, batch {args.batch_size}\n{model}")

    started = time.perf_counter()
    anomaly = torchlite.detect_anomaly() if args.detect_anomaly else contextlib.nullcontext()
    with anomaly:
        for epoch in range(start, args.epochs + 1):
            bar, train_loss, train_acc = train_epoch(model, criterion, opt, train_loader, epoch, args.epochs)
            test_loss, test_acc = evaluate(model, criterion, test_loader)
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            history.append(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                           test_acc=test_acc, lr=lr)
            bar.close(train_acc=train_acc, test_loss=test_loss, test_acc=test_acc)
            if args.save:
                torchlite.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history.state_dict(),
                                "rng": torchlite.get_rng_state(),
                                "args": {k: getattr(args, k) for k in RUN_SETTINGS}}, args.save)
    if len(history):
        print(f"test accuracy {100 * history['test_acc'][-1]:.2f}% after epoch {history['epoch'][-1]} "
              f"({time.perf_counter() - started:.1f} s)")
    if args.plot:
        history.plot(args.plot)
        print(f"curves saved to {args.plot}")
    return history


if __name__ == "__main__":
    main()
