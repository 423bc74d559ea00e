"""Train a convolutional network on MNIST (or Fashion-MNIST) with a hand-written training loop.

    python examples/mnist_cnn.py                           # 99.32% MNIST test accuracy (5 epochs)
    python examples/mnist_cnn.py --dataset fashion-mnist   # 91.89% Fashion-MNIST test accuracy
    python examples/mnist_cnn.py --model lenet             # classic LeNet-5: 99.02% in 35 s
    python examples/mnist_cnn.py --save run.npz            # checkpoint after every epoch
    python examples/mnist_cnn.py --resume run.npz --epochs 6 --save run.npz   # go on to epoch 6
    python examples/mnist_cnn.py --plot curves.png         # loss and accuracy curves (needs matplotlib)
    mpiexec -n 2 python examples/mnist_cnn.py --distributed  # data-parallel over 2 MPI ranks (torchlite[mpi])

The first two take about 3.5 minutes each on 2 cores (5 epochs of about 40 s, AMD EPYC, numpy
with OpenBLAS); MNIST passes 99.2% at epoch 4. The default model is two blocks of
Conv2d 3x3 -> BatchNorm2d -> ReLU -> MaxPool2d(2) (28 -> 14 -> 7 pixels), then
Dropout -> Linear -> ReLU -> Dropout -> Linear. The loop is
written out: forward, loss, ``model.backward(criterion.backward())``, ``opt.step()``; every
gradient is a hand-written backward (Conv2d's is one GEMM for the weights and a col2im for the
input; MaxPool2d's routes each window's gradient to its first maximum). Batch norm uses batch
statistics in ``model.train()`` and running statistics in ``model.eval()``, so evaluation runs
in eval mode. A checkpoint holds the model (with the running statistics), optimizer and
scheduler state, the epoch, the metrics history and the random generator's state, so a resumed
run is bit for bit the run that was not interrupted. The flags are those of
examples/mnist_fnn.py, with ``--model``, ``--channels`` and ``--hidden`` for the architecture.
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
MEAN, STD = np.float32(0.1307), np.float32(0.3081)  # MNIST pixel statistics, as torch's examples use
# What defines a run: on --resume these come from the checkpoint, not from the command line.
RUN_SETTINGS = ("model", "batch_size", "lr", "lr_decay", "optimizer", "momentum", "weight_decay", "channels",
                "hidden", "dropout", "seed", "dataset", "limit_train")


def build_model(name="cnn", channels=(32, 64), hidden=128, dropout=0.25, classes=10):
    """The network for 28x28 grey images: (N, 1, 28, 28) -> logits (N, classes).

    ``cnn``: Conv 3x3 (no bias: the batch norm after it would cancel one) -> BatchNorm -> ReLU ->
    MaxPool(2) per entry of ``channels``, then Dropout -> Linear(hidden) -> ReLU -> Dropout -> Linear.
    ``lenet``: LeNet-5 (conv 6 and 16 channels 5x5, pools, 120-84-classes); the other arguments are unused.
    """
    if name == "lenet":
        layers = [nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),       # 28 -> 24 -> 12
                  nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),      # 12 -> 8 -> 4
                  nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
                  nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes)]
    else:
        layers, c_in, size = [], 1, 28
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, size = c, size // 2
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(c_in * size * size, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(hidden, classes))
    model = nn.Sequential(*layers)
    model.needs_input_grad = False  # its input is data: the first convolution skips dLoss/dInput
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
    p.add_argument("--model", choices=("cnn", "lenet"), default="cnn")
    p.add_argument("--epochs", type=int, default=5, help="train up to this epoch (counting resumed ones)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-decay", type=float, default=0.6, help="learning rate factor after each epoch")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="output channels of each conv block")
    p.add_argument("--hidden", type=int, default=128, help="width of the hidden linear layer")
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=REPO_DATA, help="folder holding mnist/ (and fashion-mnist/)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here after every epoch")
    p.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    p.add_argument("--plot", metavar="PATH", help="save loss and accuracy curves as a PNG (needs matplotlib)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of mpiexec -n N (--batch-size is the global batch)")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="check every layer's outputs and gradients for NaN/inf (slower)")
    args = p.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install matplotlib")
    if not 1 <= len(args.channels) <= 4:
        p.error("--channels: 1 to 4 conv blocks (each halves the 28-pixel image)")
    return args


def normalize(x):
    return (x - MEAN) / STD


def train_epoch(model, criterion, opt, loader, epoch, epochs):
    """One pass over ``loader``; returns (progress bar, mean loss, accuracy). Exits on a NaN/inf loss."""
    model.train()
    bar = ProgressBar(len(loader), desc=f"epoch {epoch}/{epochs}")
    loss_sum = correct = seen = 0
    for step, (x, y) in enumerate(loader, 1):
        opt.zero_grad()
        logits = model(normalize(x))
        loss = float(criterion(logits, y))
        if not np.isfinite(loss):
            sys.exit(f"mnist_cnn: the loss is {loss} at epoch {epoch}, step {step}: training diverged. "
                     "Try a smaller --lr, or --detect-anomaly to find the layer where it starts.")
        model.backward(criterion.backward())
        opt.step()
        loss_sum += loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.update(loss=loss)
    return bar, loss_sum / seen, correct / seen


def evaluate(model, criterion, loader):
    """(mean loss, accuracy) over ``loader`` in eval mode, without keeping anything for backward."""
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
    dataset = DATASETS[args.dataset]
    try:
        train_set = dataset(root=args.data, train=True)
        test_set = dataset(root=args.data, train=False)
    except DatasetNotFoundError as e:
        sys.exit(str(e))
    if args.limit_train:
        train_set = Subset(train_set, range(min(args.limit_train, len(train_set))))
    sampler, world, save = None, 1, torchlite.save
    if args.distributed:
        import torchlite.distributed as dist
        sampler = dist.DistributedSampler(train_set, seed=args.seed)
        world, save = dist.get_world_size(), dist.save_on_rank0  # rank 0 writes the checkpoints
        if dist.get_rank() != 0:  # rank 0 reports
            sys.stdout = sys.stderr = open(os.devnull, "w")
    train_loader = DataLoader(train_set, batch_size=args.batch_size // world, shuffle=sampler is None, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_model(args.model, args.channels, args.hidden, args.dropout)
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
    print(f"{args.dataset}: {len(train_set)} train / {len(test_set)} test images; model {model}; "
          f"{args.optimizer} lr {args.lr} decay {args.lr_decay}/epoch, batch {args.batch_size}")

    trainer = dist.DistributedDataParallel(model) if args.distributed else model
    started = time.perf_counter()
    anomaly = torchlite.detect_anomaly() if args.detect_anomaly else contextlib.nullcontext()
    with anomaly:
        for epoch in range(start, args.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            bar, train_loss, train_acc = train_epoch(trainer, criterion, opt, train_loader, epoch, args.epochs)
            if args.distributed:
                train_loss, train_acc = dist.all_reduce_mean(train_loss), dist.all_reduce_mean(train_acc)
            test_loss, test_acc = evaluate(model, criterion, test_loader)
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            history.append(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                           test_acc=test_acc, lr=lr)
            bar.close(train_acc=train_acc, test_loss=test_loss, test_acc=test_acc)
            if args.save:
                save({"model": model.state_dict(), "optimizer": opt.state_dict(),
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
