"""Model, data and training loop shared by the MPI worker and the single-process references.

The distributed run uses ``DistributedSampler()`` (world size and rank from MPI) and a local
batch of ``GLOBAL_BATCH // world``; the reference is the same loop with
``DistributedSampler(num_replicas=1, rank=0)`` and the whole global batch, which visits the
same global batches in the same order.
"""
import numpy as np

import torchlite
import torchlite.distributed as dist
from torchlite import nn, optim
from torchlite.data import DataLoader, TensorDataset

N_SAMPLES, N_FEATURES, N_CLASSES, GLOBAL_BATCH = 64, 6, 3, 16
SEED = 3


def make_data():
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return TensorDataset(x, y)


def make_model(batch_norm=False, seed=0):
    """A float64 MLP (with a BatchNorm1d in the middle when ``batch_norm``)."""
    torchlite.set_default_dtype(np.float64)
    torchlite.manual_seed(seed)
    layers = [nn.Linear(N_FEATURES, 16)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Linear(16, N_CLASSES)]
    return nn.Sequential(*layers)


def make_optimizer(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def make_loader(dataset, world_size=None, rank=None):
    sampler = dist.DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=SEED)
    return DataLoader(dataset, batch_size=GLOBAL_BATCH // sampler.num_replicas, sampler=sampler), sampler


def train_epochs(model, opt, loader, sampler, epochs, reduce=None):
    """Train over ``epochs`` (an iterable of epoch numbers); ``reduce(model)`` runs after backward."""
    criterion = nn.CrossEntropyLoss()
    for epoch in epochs:
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            criterion(model(x), y)
            model.backward(criterion.backward())
            if reduce is not None:
                reduce(model)
            opt.step()


def reference(epochs, batch_norm=False):
    """Parameters (and buffers) of one process training over the global batches."""
    model = make_model(batch_norm)
    opt = make_optimizer(model)
    loader, sampler = make_loader(make_data(), world_size=1, rank=0)
    train_epochs(model, opt, loader, sampler, epochs)
    return model
