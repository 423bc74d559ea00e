"""Run plumbing shared by mnist_fnn.py, mnist_cnn.py and mnist_rnn.py: flags, data, checkpoints, evaluation.

Each example keeps its own training loop; what is here is the same in all three. The examples import
this module after they have made torchlite importable. Python puts a script's own folder first on
``sys.path``, so ``import _common`` works whatever the working directory.
"""
import argparse
import importlib.util
import os
import sys
import time

import torchlite
import torchlite.optim as optim
from torchlite.data import Subset
from torchlite.data.datasets import MNIST, DatasetNotFoundError, FashionMNIST

REPO_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "data"))
DATASETS = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


def run_parser(doc):
    """An argument parser described by the first line of ``doc`` that shows the defaults in --help."""
    return argparse.ArgumentParser(description=doc.split("\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_training_args(parser, epochs, batch_size, lr):
    """--epochs, --batch-size, --lr and --lr-decay, with this example's defaults."""
    parser.add_argument("--epochs", type=int, default=epochs, help="train up to this epoch (counting resumed ones)")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--lr-decay", type=float, default=0.6, help="learning rate factor after each epoch")


def add_optimizer_args(parser):
    """--optimizer, --momentum and --weight-decay, read by make_optimizer."""
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--momentum", type=float, default=0.9, help="for sgd and rmsprop")
    parser.add_argument("--weight-decay", type=float, default=0.0)


def add_run_args(parser, plot=False):
    """--seed, the data flags, --save and --resume; with ``plot``, --plot (check it with check_plot)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=REPO_DATA, help="folder holding mnist/ (and fashion-mnist/)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--limit-train", type=int, default=None, help="train on the first N training images only")
    parser.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here after every epoch")
    parser.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    if plot:
        parser.add_argument("--plot", metavar="PATH", help="save loss and accuracy curves as a PNG (needs matplotlib)")


def check_plot(parser, args):
    """Stop with a usage error before training when --plot is given and matplotlib is missing."""
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib")


def make_optimizer(args, params):
    """The --optimizer over ``params`` with --lr and --weight-decay (sgd with a --momentum above 0 is Nesterov's)."""
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                         weight_decay=args.weight_decay)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


def resume_settings(args, settings):
    """The checkpoint named by --resume (None without it), its run ``settings`` copied onto ``args``."""
    if not args.resume:
        return None
    checkpoint = torchlite.load(args.resume)
    for key in settings:
        setattr(args, key, checkpoint["args"][key])
    return checkpoint


def load_mnist(args):
    """(train set, test set) of --dataset under --data, the train set cut to --limit-train; exits if missing."""
    dataset = DATASETS[args.dataset]
    try:
        train_set = dataset(root=args.data, train=True)
        test_set = dataset(root=args.data, train=False)
    except DatasetNotFoundError as e:
        sys.exit(str(e))
    if args.limit_train:
        train_set = Subset(train_set, range(min(args.limit_train, len(train_set))))
    return train_set, test_set


def restore(checkpoint, path, model, opt, scheduler, history):
    """Load ``checkpoint`` (read from ``path``; None: a new run) into the run; returns the first epoch to train.

    The random generator's state comes back last, after the model was built, so the resumed run
    draws the numbers the uninterrupted run would have drawn.
    """
    if checkpoint is None:
        return 1
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    history.load_state_dict(checkpoint["history"])
    torchlite.set_rng_state(checkpoint["rng"])
    print(f"resuming {path} after epoch {checkpoint['epoch']} (run settings from the checkpoint)")
    return checkpoint["epoch"] + 1


def checkpoint_state(model, opt, scheduler, epoch, history, args, settings):
    """What restore and predict.py read back: the run's state after ``epoch`` and its run ``settings``."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": epoch, "history": history.state_dict(), "rng": torchlite.get_rng_state(),
            "args": {k: getattr(args, k) for k in settings}}


def evaluate(model, criterion, loader, prepare):
    """(mean loss, accuracy) over ``loader`` in eval mode, without keeping anything for backward.

    ``prepare`` maps a batch of (N, 1, 28, 28) images to the model's input.
    """
    model.eval()
    loss_sum = correct = seen = 0
    with torchlite.no_grad():
        for x, y in loader:
            logits = model(prepare(x))
            loss_sum += float(criterion(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
    return loss_sum / seen, correct / seen


def end_epoch(history, scheduler, bar, epoch, train_loss, train_acc, test_loss, test_acc):
    """Record the epoch and the learning rate it trained with, step the schedule, close the epoch's progress bar."""
    lr = scheduler.get_last_lr()[0]
    scheduler.step()
    history.append(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                   test_acc=test_acc, lr=lr)
    bar.close(train_acc=train_acc, test_loss=test_loss, test_acc=test_acc)


def report(history, started, plot=None):
    """Print the last test accuracy and the time since ``started`` (perf_counter); save the curves to ``plot``."""
    if len(history):
        print(f"test accuracy {100 * history['test_acc'][-1]:.2f}% after epoch {history['epoch'][-1]} "
              f"({time.perf_counter() - started:.1f} s)")
    if plot:
        history.plot(plot)
        print(f"curves saved to {plot}")
