"""Determinism: the same seed trains to the same bits, and a resumed run equals an uninterrupted one.

A small CNN (conv, batch norm, max pool, dropout, linear) trains with SGD + momentum + weight
decay and a StepLR schedule on synthetic data through a shuffling DataLoader. Every source of
randomness (init, dropout masks, shuffling) comes from torchlite's generator, so:

- two runs from one seed end with bit-identical parameters, buffers and optimizer state;
- k epochs, a checkpoint (model, optimizer, scheduler, rng state, epoch) written with
  ``torchlite.save``, then m more epochs in fresh objects built from another seed and loaded
  from the checkpoint, equal k + m epochs in one go, bit for bit, data order included.

Loading is all-or-nothing per object (model, optimizer, scheduler each check everything before
changing anything); across the three, the pattern in ``load_checkpoint`` below (snapshot, load,
roll back on refusal) leaves all of them unchanged when any entry is bad.
"""
import copy

import numpy as np
import pytest

import torchlite
import torchlite.nn as nn
import torchlite.optim as optim
from torchlite.data import DataLoader, TensorDataset

data_rng = np.random.default_rng(0)
IMAGES = data_rng.standard_normal((40, 1, 8, 8)).astype(np.float32)
LABELS = data_rng.integers(0, 3, size=40)
INDICES = np.arange(40)


def build(seed, own_generator=False):
    """Model, optimizer, scheduler and a shuffling loader, all from ``seed``."""
    torchlite.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(4 * 3 * 3, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    generator = np.random.default_rng(seed) if own_generator else None
    loader = DataLoader(TensorDataset(IMAGES, LABELS, INDICES), batch_size=8, shuffle=True, generator=generator)
    return model, opt, sched, loader


def train(model, opt, sched, loader, epochs):
    """``epochs`` epochs; returns the sample order seen, one array per epoch."""
    criterion = nn.CrossEntropyLoss()
    order = []
    for _ in range(epochs):
        model.train()
        seen = []
        for x, y, index in loader:
            opt.zero_grad()
            loss = criterion(model(x), y)
            model.backward(criterion.backward())
            opt.step()
            seen.append(index)
        sched.step()
        order.append(np.concatenate(seen))
    return order


def assert_same(a, b, where="state"):
    """Nested dicts/lists of arrays and numbers, equal bit for bit (arrays also in dtype)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), f"{where}: arrays differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def full_state(model, opt, sched):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}


# --------------------------------------------------------------------------- same seed, same bits
def test_same_seed_same_bits():
    runs = []
    for _ in range(2):
        model, opt, sched, loader = build(seed=7)
        order = train(model, opt, sched, loader, epochs=2)
        runs.append((copy.deepcopy(full_state(model, opt, sched)), order))
    assert_same(runs[0][0], runs[1][0])
    assert_same(runs[0][1], runs[1][1], "data order")
    assert not np.array_equal(runs[0][1][0], INDICES), "the loader did not shuffle"


def test_another_seed_other_bits():
    """The comparison above can fail: another seed gives other weights and another data order."""
    a, b = build(seed=7), build(seed=8)
    order_a, order_b = train(*a, epochs=1), train(*b, epochs=1)
    assert not np.array_equal(a[0].state_dict()["6.weight"], b[0].state_dict()["6.weight"])
    assert not np.array_equal(order_a[0], order_b[0])


# --------------------------------------------------------------------------- resume == uninterrupted
def save_checkpoint(path, model, opt, sched, loader, epoch):
    torchlite.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "loader": loader.state_dict(), "rng": torchlite.get_rng_state(), "epoch": epoch}, path)


def load_checkpoint(ckpt, model, opt, sched, loader):
    """All or nothing across the objects: snapshot each, load each (every load checks before it
    changes anything), and on a refusal put back the ones already loaded. The rng goes last."""
    objects = (model, opt, sched, loader)
    snapshots = [copy.deepcopy(o.state_dict()) for o in objects]
    loaded = []
    try:
        for o, key in zip(objects, ("model", "optimizer", "scheduler", "loader")):
            o.load_state_dict(ckpt[key])
            loaded.append(o)
    except Exception:
        for o, snapshot in zip(loaded, snapshots):
            o.load_state_dict(snapshot)
        raise
    torchlite.set_rng_state(ckpt["rng"])
    return ckpt["epoch"]


@pytest.mark.parametrize("own_generator", [False, True])
def test_resume_equals_uninterrupted(tmp_path, own_generator):
    k, m = 2, 2
    model, opt, sched, loader = build(seed=3, own_generator=own_generator)
    order = train(model, opt, sched, loader, k + m)
    expected = copy.deepcopy(full_state(model, opt, sched))

    model, opt, sched, loader = build(seed=3, own_generator=own_generator)
    first = train(model, opt, sched, loader, k)
    save_checkpoint(tmp_path / "ckpt.npz", model, opt, sched, loader, k)

    model, opt, sched, loader = build(seed=99, own_generator=own_generator)  # everything must come from the file
    epoch = load_checkpoint(torchlite.load(tmp_path / "ckpt.npz"), model, opt, sched, loader)
    assert epoch == k
    rest = train(model, opt, sched, loader, m)

    assert_same(first + rest, order, "data order")
    assert_same(full_state(model, opt, sched), expected)
    assert sched.last_epoch == k + m and opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.7 ** (k + m))


# --------------------------------------------------------------------------- all or nothing
@pytest.fixture
def trained(tmp_path):
    model, opt, sched, loader = build(seed=5)
    train(model, opt, sched, loader, 1)
    save_checkpoint(tmp_path / "ckpt.npz", model, opt, sched, loader, 1)
    model, opt, sched, loader = build(seed=6)  # other weights, a fresh optimizer and scheduler
    train(model, opt, sched, loader, 2)
    return torchlite.load(tmp_path / "ckpt.npz"), (model, opt, sched, loader)


def _bad(ckpt, part):
    """The checkpoint with one bad entry in ``part``."""
    ckpt = copy.deepcopy(ckpt)
    if part == "model":
        ckpt["model"]["6.bias"] = np.zeros(4, np.float32)
    elif part == "optimizer":
        ckpt["optimizer"]["state"][0]["momentum_buffer"] = np.zeros((2, 2), np.float32)
    else:
        ckpt["scheduler"]["base_lrs"] = [0.1, 0.1]
    return ckpt


@pytest.mark.parametrize("part", ["model", "optimizer", "scheduler"])
def test_each_load_refuses_and_changes_nothing(trained, part):
    ckpt, (model, opt, sched, _) = trained
    target = {"model": model, "optimizer": opt, "scheduler": sched}[part]
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(ValueError):
        target.load_state_dict(_bad(ckpt, part)[part])
    assert_same(target.state_dict(), before)


@pytest.mark.parametrize("part", ["model", "optimizer", "scheduler"])
def test_bad_entry_leaves_model_optimizer_scheduler_unchanged(trained, part):
    ckpt, objects = trained
    model, opt, sched, loader = objects
    before = copy.deepcopy(full_state(model, opt, sched))
    rng_before = torchlite.get_rng_state()
    with pytest.raises(ValueError):
        load_checkpoint(_bad(ckpt, part), *objects)
    assert_same(full_state(model, opt, sched), before)
    assert torchlite.get_rng_state() == rng_before
    # and the good checkpoint still loads (the refusal left nothing half-done)
    assert load_checkpoint(ckpt, *objects) == 1
    assert_same(model.state_dict(), ckpt["model"])
