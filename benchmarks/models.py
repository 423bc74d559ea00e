"""The benchmark models, written once for both libraries.

``build(nn, name)`` takes a module namespace (``torchlite.nn`` or ``torch.nn``) and returns the
same ``Sequential`` from either, so the two models have the same layers, the same
``state_dict`` keys and, once one library's weights are loaded into the other, the same numbers.
This file imports neither library: each benchmark worker imports only its own.
"""

#: name -> (description, input shape of one sample)
MODELS = {
    "mlp": ("MLP 784-256-128-10, ReLU", (784,)),
    "lenet": ("LeNet-5: conv 1->6 5x5, pool 2, conv 6->16 5x5, pool 2, 256-120-84-10, ReLU", (1, 28, 28)),
    "wide_cnn": ("wide CNN: conv 1->32 3x3 p1, pool 2, conv 32->64 3x3 p1, pool 2, 3136-128-10, ReLU",
                 (1, 28, 28)),
}

NUM_CLASSES = 10


def build(nn, name):
    """The model ``name`` (a key of ``MODELS``) built from the namespace ``nn``."""
    if name == "mlp":
        return nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, NUM_CLASSES),
        )
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),     # 28 -> 24 -> 12
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),    # 12 -> 8 -> 4
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, NUM_CLASSES),
        )
    if name == "wide_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 28 -> 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
            nn.Linear(128, NUM_CLASSES),
        )
    raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")


def make_batch(name, batch_size, seed=0):
    """Deterministic random inputs (float32) and labels (int64) for ``name``, the same in every process."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size,) + MODELS[name][1], dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, size=batch_size, dtype=np.int64)
    return x, y
