"""torchlite.data: datasets, samplers, collation and DataLoader, checked against torch.utils.data."""
import collections
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import torchlite
from torchlite.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                            RandomSampler, SequentialSampler, Subset, SubsetRandomSampler, TensorDataset,
                            WeightedRandomSampler, default_collate, default_convert, random_split)


def _to_numpy(obj):
    """torch's collated output with tensors turned into arrays, to compare with ours."""
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_numpy(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _assert_same(ours, theirs):
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs)
        for k in ours:
            _assert_same(ours[k], theirs[k])
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    else:
        assert ours == theirs


Point = collections.namedtuple("Point", ["x", "y"])
_SAMPLES = {
    "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(4)],
    "ints": [3, 1, 4, 1],
    "floats": [0.5, 1.5, 2.0, -1.0],
    "bools": [True, False, True, True],
    "np_scalars": [np.float32(1.5), np.float32(2.5), np.float32(-1.0), np.float32(0.0)],
    "np_int_scalars": [np.int16(1), np.int16(2), np.int16(3), np.int16(4)],
    "strings": ["a", "bb", "c", "d"],
    "tuples": [(np.ones(2, dtype=np.float64) * i, i) for i in range(4)],
    "dicts": [{"img": np.full((2, 2), i, dtype=np.uint8), "label": i, "name": str(i)} for i in range(4)],
    "namedtuples": [Point(np.float32(i), i) for i in range(4)],
    "nested": [{"a": (i, [float(i), 2.0 * i])} for i in range(4)],
    "lists": [[i, i + 1] for i in range(4)],
}


@pytest.mark.parametrize("kind", sorted(_SAMPLES))
def test_default_collate_matches_torch(kind):
    batch = _SAMPLES[kind]
    _assert_same(default_collate(batch), _to_numpy(tud.default_collate(batch)))


@pytest.mark.parametrize("kind", sorted(_SAMPLES))
def test_default_convert_matches_torch(kind):
    sample = _SAMPLES[kind][1]
    ours = default_convert(sample)
    theirs = _to_numpy(tud.default_convert(sample))
    if isinstance(sample, np.generic):  # torch makes a 0-d tensor, we a 0-d array
        assert isinstance(ours, np.ndarray) and ours.shape == () and ours.dtype == sample.dtype
        return
    _assert_same(ours, theirs)


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="different shapes"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([np.array(["a"]), np.array(["b"])])


# ----------------------------------------------------------------------------- datasets
def test_tensor_dataset_items_and_batches():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 3
    idx = [7, 2, 2, 9]
    _assert_same(ds.get_batch(idx), default_collate([ds[i] for i in idx]))
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, np.arange(9))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


def test_subset_and_fast_path():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    ds = TensorDataset(x, np.arange(10))
    sub = Subset(ds, [9, 0, 4, 5])
    assert len(sub) == 4
    np.testing.assert_array_equal(sub[0][0], x[9])
    assert callable(getattr(sub, "get_batch", None))
    _assert_same(sub.get_batch([3, 0]), default_collate([sub[3], sub[0]]))
    assert len(sub.__getitems__([1, 2])) == 2
    # No fast path when the wrapped dataset has none.
    plain = Subset([(i, i) for i in range(5)], [1, 2])
    assert not hasattr(plain, "get_batch")
    assert plain[1] == (2, 2)


def test_concat_and_chain():
    a = TensorDataset(np.arange(3))
    b = TensorDataset(np.arange(10, 15))
    cat = a + b
    assert isinstance(cat, ConcatDataset) and len(cat) == 8 and cat.cumulative_sizes == [3, 8]
    assert [int(cat[i][0]) for i in range(8)] == [0, 1, 2, 10, 11, 12, 13, 14]
    assert int(cat[-1][0]) == 14
    with pytest.raises(ValueError):
        cat[-9]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])

    class Stream(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    chain = Stream(2) + Stream(3)
    assert isinstance(chain, ChainDataset)
    assert list(chain) == [0, 1, 0, 1, 2] and len(chain) == 5
    with pytest.raises(TypeError):
        ConcatDataset([Stream(2)])


@pytest.mark.parametrize("n,lengths", [
    (10, [3, 7]), (30, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]), (7, [0.1, 0.2, 0.7]), (100, [1 / 3, 1 / 3, 1 / 3]),
    (5, [0.25, 0.25, 0.25, 0.25]),
])
def test_random_split_lengths_match_torch(n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = [len(s) for s in tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))]
        parts = random_split(list(range(n)), lengths)
    assert [len(s) for s in parts] == theirs
    flat = sorted(i for p in parts for i in p)
    assert flat == list(range(n))


def test_random_split_errors_and_seed():
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError):
        tud.random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="Length of split at index"):
        random_split(range(2), [0.9, 0.1])
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert random_split(range(10), [5, 5], g1)[0].indices == random_split(range(10), [5, 5], g2)[0].indices
    torchlite.manual_seed(1)
    first = random_split(range(10), [5, 5])[0].indices
    torchlite.manual_seed(1)
    assert random_split(range(10), [5, 5])[0].indices == first


# ----------------------------------------------------------------------------- samplers
@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (9, 3, False),
                                                    (2, 5, False), (2, 5, True), (0, 4, False), (17, 1, False)])
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    indices = list(np.random.default_rng(n).permutation(n))
    ours = BatchSampler(indices, batch_size, drop_last)
    theirs = tud.BatchSampler(indices, batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=-1), dict(batch_size=2.0),
                                    dict(batch_size=True), dict(drop_last=1), dict(drop_last=None)])
def test_batch_sampler_argument_checks_match_torch(kwargs):
    args = dict(batch_size=2, drop_last=False) | kwargs
    with pytest.raises(ValueError) as ours:
        BatchSampler(range(4), **args)
    with pytest.raises(ValueError) as theirs:
        tud.BatchSampler(range(4), **args)
    assert str(ours.value) == str(theirs.value)


def test_sequential_sampler():
    assert list(SequentialSampler(range(5))) == list(tud.SequentialSampler(range(5)))
    assert len(SequentialSampler(range(5))) == 5


@pytest.mark.parametrize("replacement,num_samples", [(False, None), (False, 7), (False, 23), (True, None), (True, 40)])
def test_random_sampler_semantics(replacement, num_samples):
    n = 10
    ours = list(RandomSampler(range(n), replacement, num_samples))
    theirs = list(tud.RandomSampler(range(n), replacement, num_samples))
    assert len(ours) == len(theirs) == len(RandomSampler(range(n), replacement, num_samples))
    assert all(0 <= i < n for i in ours) and all(type(i) is int for i in ours)
    if not replacement:
        # Whole permutations, then a partial one: every index appears floor or ceil(num/n) times.
        counts = np.bincount(ours, minlength=n)
        total = len(ours)
        assert counts.min() >= total // n and counts.max() <= -(-total // n)


def test_random_sampler_checks_match_torch():
    for kwargs, exc in [(dict(replacement=1), TypeError), (dict(num_samples=0), ValueError),
                        (dict(num_samples=2.5), ValueError)]:
        with pytest.raises(exc) as ours:
            RandomSampler(range(3), **kwargs)
        with pytest.raises(exc) as theirs:
            tud.RandomSampler(range(3), **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        RandomSampler(range(3), generator=torch.Generator())


def test_random_sampler_generators():
    g = np.random.default_rng(5)
    s = RandomSampler(range(50), generator=g)
    first, second = list(s), list(s)
    assert first != second  # the generator moves on: a new order each pass
    assert list(RandomSampler(range(50), generator=np.random.default_rng(5))) == first
    torchlite.manual_seed(3)
    a = list(RandomSampler(range(50)))
    torchlite.manual_seed(3)
    assert list(RandomSampler(range(50))) == a
    # One draw from the global stream per pass, whatever the dataset size.
    torchlite.manual_seed(3)
    list(RandomSampler(range(1000)))
    after_big = torchlite.get_generator().random()
    torchlite.manual_seed(3)
    list(RandomSampler(range(5)))
    assert torchlite.get_generator().random() == after_big


def test_subset_random_sampler():
    idx = [10, 20, 30, 40]
    s = SubsetRandomSampler(idx, generator=np.random.default_rng(0))
    out = list(s)
    assert sorted(out) == idx and len(s) == 4
    assert sorted(list(tud.SubsetRandomSampler(idx))) == sorted(out)


def test_weighted_random_sampler():
    w = [0.0, 1.0, 3.0]
    s = WeightedRandomSampler(w, 4000, generator=np.random.default_rng(0))
    counts = np.bincount(list(s), minlength=3)
    assert counts[0] == 0 and len(s) == 4000
    assert abs(counts[2] / counts[1] - 3.0) < 0.3
    no_repl = list(WeightedRandomSampler([1, 1, 1, 5], 4, replacement=False))
    assert sorted(no_repl) == [0, 1, 2, 3]
    for kwargs in [dict(num_samples=0), dict(num_samples=True), dict(replacement=0), dict(weights=[[1.0, 2.0]])]:
        args = dict(weights=[1.0, 2.0], num_samples=2) | kwargs
        with pytest.raises(ValueError) as ours:
            WeightedRandomSampler(**args)
        with pytest.raises(ValueError) as theirs:
            tud.WeightedRandomSampler(**args)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


# ----------------------------------------------------------------------------- DataLoader
def _dataset(n=23):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(x, np.arange(n))


@pytest.mark.parametrize("n,batch_size,drop_last", [(23, 5, False), (23, 5, True), (20, 5, True), (3, 8, False),
                                                    (3, 8, True), (1, 1, False)])
def test_dataloader_batches_and_len(n, batch_size, drop_last):
    ds = _dataset(n)
    loader = DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    torch_len = len(tud.DataLoader(range(n), batch_size=batch_size, drop_last=drop_last))
    assert len(loader) == len(batches) == torch_len
    sizes = [len(y) for _, y in batches]
    full, rest = divmod(n, batch_size)
    assert sizes == [batch_size] * full + ([] if drop_last or rest == 0 else [rest])
    if batches:
        x, y = batches[0]
        assert x.dtype == np.float32 and x.shape[1:] == (3,) and y.dtype == np.int64


def test_dataloader_shuffle_visits_every_index_once():
    ds = _dataset(103)
    loader = DataLoader(ds, batch_size=10, shuffle=True)
    orders = []
    for _ in range(3):
        seen = np.concatenate([y for _, y in loader])
        assert sorted(seen.tolist()) == list(range(103))
        orders.append(seen.tolist())
    assert orders[0] != orders[1] != orders[2]


def test_dataloader_seeded_and_resumable():
    ds = _dataset(50)

    def epoch_orders(seed, epochs=2):
        torchlite.manual_seed(seed)
        loader = DataLoader(ds, batch_size=7, shuffle=True)
        return [np.concatenate([y for _, y in loader]).tolist() for _ in range(epochs)]

    assert epoch_orders(1) == epoch_orders(1)
    assert epoch_orders(1) != epoch_orders(2)
    # Resume between epochs from the global RNG state.
    torchlite.manual_seed(1)
    loader = DataLoader(ds, batch_size=7, shuffle=True)
    first = [y.tolist() for _, y in loader]
    state = torchlite.get_rng_state()
    second = [y.tolist() for _, y in loader]
    torchlite.manual_seed(99)
    torchlite.set_rng_state(state)
    assert [y.tolist() for _, y in DataLoader(ds, batch_size=7, shuffle=True)] == second != first


def test_dataloader_own_generator_state_dict(tmp_path):
    ds = _dataset(40)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(4))
    list(loader)
    torchlite.save({"loader": loader.state_dict()}, tmp_path / "ck.npz")
    expected = [y.tolist() for _, y in loader]
    fresh = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(123))
    fresh.load_state_dict(torchlite.load(tmp_path / "ck.npz")["loader"])
    assert [y.tolist() for _, y in fresh] == expected
    global_loader = DataLoader(ds, batch_size=8, shuffle=True)
    assert global_loader.state_dict() == {"generator": None}
    with pytest.raises(ValueError, match="owns a generator"):
        global_loader.load_state_dict(loader.state_dict())


def test_dataloader_fast_path_is_one_fancy_index():
    class Counting(TensorDataset):
        item_calls = batch_calls = 0

        def __getitem__(self, index):
            Counting.item_calls += 1
            return super().__getitem__(index)

        def get_batch(self, indices):
            Counting.batch_calls += 1
            return super().get_batch(indices)

    ds = Counting(np.arange(100, dtype=np.float32), np.arange(100))
    fast = [b for b in DataLoader(Subset(ds, list(range(0, 100, 2))), batch_size=16, shuffle=True)]
    assert Counting.item_calls == 0 and Counting.batch_calls == 4
    assert sorted(np.concatenate([x for x, _ in fast]).tolist()) == list(range(0, 100, 2))
    # A custom collate_fn gets samples, so the per-sample path is used.
    batches = list(DataLoader(ds, batch_size=50, collate_fn=lambda samples: len(samples)))
    assert batches == [50, 50] and Counting.item_calls == 100


def test_dataloader_getitems_and_plain_sequences():
    class WithGetitems(Dataset):
        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, indices):
            return [(i, float(i)) for i in indices]

        def __len__(self):
            return 5

    x, y = next(iter(DataLoader(WithGetitems(), batch_size=5)))
    assert x.tolist() == [0, 1, 2, 3, 4] and y.dtype == np.float64
    batches = list(DataLoader([{"a": i} for i in range(5)], batch_size=2))
    assert [b["a"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]


def test_dataloader_no_batching():
    out = list(DataLoader(_dataset(4), batch_size=None))
    assert len(out) == 4 and isinstance(out[0], list) and out[0][0].shape == (3,)
    assert len(DataLoader(_dataset(4), batch_size=None)) == 4


def test_dataloader_batch_sampler_and_sampler():
    ds = _dataset(10)
    loader = DataLoader(ds, batch_sampler=[[0, 1], [5, 6, 7]])
    assert [y.tolist() for _, y in loader] == [[0, 1], [5, 6, 7]]
    loader = DataLoader(ds, batch_size=4, sampler=[9, 8, 7, 6, 5])
    assert [y.tolist() for _, y in loader] == [[9, 8, 7, 6], [5]]
    assert len(loader) == 2


def test_dataloader_iterable_dataset():
    class Stream(IterableDataset):
        def __iter__(self):
            return (np.full(2, i, dtype=np.float32) for i in range(7))

        def __len__(self):
            return 7

    loader = DataLoader(Stream(), batch_size=3)
    assert [b.shape[0] for b in loader] == [3, 3, 1] and len(loader) == 3
    loader = DataLoader(Stream(), batch_size=3, drop_last=True)
    assert [b.shape[0] for b in loader] == [3, 3] and len(loader) == 2
    assert len(list(DataLoader(Stream(), batch_size=None))) == 7


class _Stream(IterableDataset, tud.IterableDataset):
    def __iter__(self):
        return iter(range(3))


_BAD_LOADER_ARGS = [
    dict(shuffle=True, sampler=[0, 1]),
    dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], shuffle=True),
    dict(batch_sampler=[[0]], sampler=[0]),
    dict(batch_sampler=[[0]], drop_last=True),
    dict(batch_size=None, drop_last=True),
    dict(num_workers=-1),
    dict(timeout=-1),
    dict(prefetch_factor=2),
    dict(persistent_workers=True),
    dict(batch_size=0),
    dict(drop_last="yes"),
]


@pytest.mark.parametrize("kwargs", _BAD_LOADER_ARGS)
def test_dataloader_argument_checks_match_torch(kwargs):
    with pytest.raises(ValueError) as ours:
        DataLoader(list(range(4)), **kwargs)
    with pytest.raises(ValueError) as theirs:
        tud.DataLoader(list(range(4)), **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kwargs", [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])])
def test_dataloader_iterable_argument_checks_match_torch(kwargs):
    with pytest.raises(ValueError) as ours:
        DataLoader(_Stream(), **kwargs)
    with pytest.raises(ValueError) as theirs:
        tud.DataLoader(_Stream(), **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_dataloader_attributes_frozen_and_workers_accepted():
    loader = DataLoader(_dataset(6), batch_size=4, num_workers=2, persistent_workers=True, pin_memory=True)
    assert loader.prefetch_factor == 2
    assert sum(len(y) for _, y in loader) == 6
    for name in ("batch_size", "sampler", "batch_sampler", "drop_last", "dataset", "persistent_workers"):
        with pytest.raises(ValueError, match="should not be set"):
            setattr(loader, name, None)
    loader.collate_fn = default_collate  # not frozen in torch either
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(_dataset(6), shuffle=True, generator=torch.Generator())


def test_default_collate_keeps_a_string_column_a_tuple_as_torch():
    from torch.utils.data import default_collate as torch_collate

    batch = [(1.0, "a"), (2.0, "b")]
    ours, theirs = torchlite.data.default_collate(batch), torch_collate(batch)
    assert ours[1] == theirs[1] == ("a", "b")
    assert _column_kinds(ours) == _column_kinds(theirs)


def _column_kinds(batch):
    return [type(column).__name__ if isinstance(column, (tuple, list)) else "array" for column in batch]
