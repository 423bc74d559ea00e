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


def parse_args(argv=None):
    p = run_parser(__doc__)
    p.add_argument("--model", choices=("cnn", "lenet"), default="cnn")
    add_training_args(p, epochs=5, batch_size=64, lr=2e-3)
    add_optimizer_args(p)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="output channels of each conv block")
    p.add_argument("--hidden", type=int, default=128, help="width of the hidden linear layer")
    p.add_argument("--dropout", type=float, default=0.25)
    add_run_args(p, plot=True)
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of mpiexec -n N (--batch-size is the global batch)")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="check every layer's outputs and gradients for NaN/inf (slower)")
    args = p.parse_args(argv)
    check_plot(p, args)
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


def main(argv=None):
    args = parse_args(argv)
    ckpt = resume_settings(args, RUN_SETTINGS)
    torchlite.manual_seed(args.seed)
    train_set, test_set = load_mnist(args)
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
    start = restore(ckpt, args.resume, model, opt, scheduler, history)
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
            test_loss, test_acc = evaluate(model, criterion, test_loader, normalize)
            end_epoch(history, scheduler, bar, epoch, train_loss, train_acc, test_loss, test_acc)
            if args.save:
                save(checkpoint_state(model, opt, scheduler, epoch, history, args, RUN_SETTINGS), args.save)
    report(history, started, args.plot)
    return history


if __name__ == "__main__":
    main()
