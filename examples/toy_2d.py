"""Two classic 2-d toy problems for a small network of sigmoid units.

    python examples/toy_2d.py --task parabola        # (x, y) ~ N(0, I), labelled by x^2 > y
    python examples/toy_2d.py --task moons --plot moons.png   # two interleaved half circles

Prints the train and test accuracy; ``--plot`` draws the decision boundary (needs matplotlib).
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

try:
    import torchlite
except ImportError:  # run from a checkout that was not pip-installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import torchlite
import torchlite.nn as nn
import torchlite.optim as optim
from torchlite.data import DataLoader, TensorDataset


def parabola(n, rng):
    """Standard normal points, class 1 where x^2 > y (outside the parabola y = x^2)."""
    points = rng.standard_normal((n, 2))
    return points, points[:, 0] ** 2 > points[:, 1]


def moons(n, rng, noise=0.15):
    """Two interleaved half circles (the upper one is class 0), with Gaussian noise."""
    labels = np.arange(n) % 2 == 1
    t = rng.uniform(0, np.pi, n)
    points = np.where(labels[:, None], np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1),
                      np.stack([np.cos(t), np.sin(t)], 1))
    return points + noise * rng.standard_normal((n, 2)), labels


TASKS = {"parabola": parabola, "moons": moons}


def build_model(hidden):
    model = nn.Sequential(nn.Linear(2, hidden), nn.Sigmoid(), nn.Linear(hidden, hidden), nn.Sigmoid(),
                          nn.Linear(hidden, 1))
    model.needs_input_grad = False
    return model


def accuracy(model, x, y):
    with torchlite.no_grad():
        return float(((model(x)[:, 0] > 0) == (y[:, 0] > 0.5)).mean())


def plot_boundary(model, x, y, path, title):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        sys.exit("toy_2d: --plot needs matplotlib: pip install matplotlib")
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    with torchlite.no_grad():
        prob = 1 / (1 + np.exp(-model(grid)[:, 0].reshape(gx.shape)))
    fig = Figure(figsize=(5, 5), layout="tight")
    ax = fig.subplots()
    ax.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.6)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k")
    ax.scatter(x[:, 0], x[:, 1], c=y[:, 0], cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.2)
    ax.set_title(title)
    fig.savefig(path, dpi=100)
    print(f"decision boundary saved to {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", choices=sorted(TASKS), default="parabola")
    p.add_argument("--samples", type=int, default=1000, help="training points (and as many test points)")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PATH", help="draw the decision boundary to this PNG (needs matplotlib)")
    args = p.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install matplotlib")

    rng = torchlite.manual_seed(args.seed)
    x, y = TASKS[args.task](2 * args.samples, rng)
    x, y = x.astype(np.float32), y.astype(np.float32)[:, None]
    x_train, y_train, x_test, y_test = x[:args.samples], y[:args.samples], x[args.samples:], y[args.samples:]
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)
    model = build_model(args.hidden)
    criterion = nn.BCEWithLogitsLoss()
    opt = optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(1, args.epochs + 1):
        model.train()
        loss_sum = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss_sum += float(criterion(model(xb), yb)) * len(xb)
            model.backward(criterion.backward())
            opt.step()
        if epoch % max(1, args.epochs // 5) == 0 or epoch == args.epochs:
            model.eval()
            print(f"epoch {epoch:4d}  loss {loss_sum / args.samples:.4f}  train acc {accuracy(model, x_train, y_train):.3f}  "
                  f"test acc {accuracy(model, x_test, y_test):.3f}")
    test_acc = accuracy(model, x_test, y_test)
    print(f"{args.task}: test accuracy {100 * test_acc:.1f}%")
    if args.plot:
        plot_boundary(model, x_test, y_test, args.plot, f"{args.task}: test accuracy {100 * test_acc:.1f}%")
    return test_acc


if __name__ == "__main__":
    main()
