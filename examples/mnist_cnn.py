"""Train a convolutional network (LeNet-5 or a wider CNN) on MNIST or Fashion-MNIST.

    python examples/mnist_cnn.py                              # LeNet-5, 3 epochs, about 99% test accuracy
    python examples/mnist_cnn.py --model wide --epochs 2      # conv 32-64 + pool, about 99.2%
    python examples/mnist_cnn.py --save cnn.npz               # checkpoint after every epoch
    python examples/mnist_cnn.py --resume cnn.npz --epochs 5 --save cnn.npz

Every gradient is a hand-written backward: Conv2d's is one GEMM for the weights and a col2im
for the input, MaxPool2d's routes each window's gradient to its first maximum. The model's
first layer is told its input is data (``needs_input_grad = False``), so it skips computing
dLoss/dInput, which nothing would use.
"""
import argparse
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

REPO_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data"))
DATASETS = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
MEAN, STD = np.float32(0.1307), np.float32(0.3081)  # MNIST pixel statistics, as torch's examples use
RUN_SETTINGS = ("model", "batch_size", "lr", "lr_decay", "seed", "dataset", "limit_train")


def build_model(name):
    """LeNet-5 (conv 6 and 16 channels, 5x5) or a wider CNN (conv 32 and 64 channels, 3x3 padded)."""
    if name == "lenet":
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),      # 28 -> 24 -> 12
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),     # 12 -> 8 -> 4
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14 -> 7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, 10),
        )
    model.needs_input_grad = False  # the input is data: the first conv skips dLoss/dInput
    return model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=("lenet", "wide"), default="lenet")
    p.add_argument("--epochs", type=int, default=3, help="train up to this epoch (counting resumed ones)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=0.7, help="learning rate factor after each epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=REPO_DATA, help="folder holding mnist/ (and fashion-mnist/)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here after every epoch")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    return p.parse_args(argv)


def normalize(x):
    return (x - MEAN) / STD


def train_epoch(model, criterion, opt, loader, epoch):
    """One pass over ``loader``; returns (mean loss, accuracy). Exits on a NaN/inf loss."""
    model.train()
    loss_sum = correct = seen = 0
    for step, (x, y) in enumerate(loader, 1):
        opt.zero_grad()
        logits = model(normalize(x))
        loss = float(criterion(logits, y))
        if not np.isfinite(loss):
            sys.exit(f"mnist_cnn: the loss is {loss} at epoch {epoch}, step {step}: training diverged; "
                     "try a smaller --lr")
        model.backward(criterion.backward())
        opt.step()
        loss_sum += loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return loss_sum / seen, correct / seen


def evaluate(model, criterion, loader):
    """(mean loss, accuracy) over ``loader``, keeping nothing for backward."""
    model.eval()
    loss_sum = correct = seen = 0
    with torchlite.no_grad():
        for x, y in loader:
            logits = model(normalize(x))
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
    try:
        train_set = DATASETS[args.dataset](root=args.data, train=True)
        test_set = DATASETS[args.dataset](root=args.data, train=False)
    except DatasetNotFoundError as e:
        sys.exit(str(e))
    if args.limit_train:
        train_set = Subset(train_set, range(min(args.limit_train, len(train_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_model(args.model)
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.ExponentialLR(opt, gamma=args.lr_decay)
    start = 1
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torchlite.set_rng_state(ckpt["rng"])
        start = ckpt["epoch"] + 1
        print(f"resuming {args.resume} after epoch {ckpt['epoch']} (run settings from the checkpoint)")
    print(f"{args.dataset}: {len(train_set)} train / {len(test_set)} test images, batch {args.batch_size}, "
          f"Adam lr {args.lr}\n{model}")

    test_acc = None
    for epoch in range(start, args.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, criterion, opt, train_loader, epoch)
        test_loss, test_acc = evaluate(model, criterion, test_loader)
        scheduler.step()
        print(f"epoch {epoch}/{args.epochs}: train loss {train_loss:.4f} acc {100 * train_acc:.2f}% | "
              f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}% | {time.perf_counter() - started:.1f} s")
        if args.save:
            torchlite.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": scheduler.state_dict(), "epoch": epoch, "rng": torchlite.get_rng_state(),
                            "args": {k: getattr(args, k) for k in RUN_SETTINGS}}, args.save)
    return test_acc


if __name__ == "__main__":
    main()
