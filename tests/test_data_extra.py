"""torchlite.data.StackDataset and get_worker_info against torch.utils.data (torch 2.13)."""
import numpy as np
import pytest
import torch
import torch.utils.data as td

import torchlite.data as tld

from parity import to_numpy


def _arrays(n=7):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 5, n), [f"s{i}" for i in range(n)]


def _both(x, y, words, as_dict):
    """The same stack in torchlite (NumPy) and torch (tensors): a TensorDataset, a plain array, a list."""
    tl_parts = (tld.TensorDataset(x), y, words)
    th_parts = (td.TensorDataset(torch.from_numpy(x)), torch.from_numpy(y), words)
    if as_dict:
        keys = ("x", "y", "w")
        return tld.StackDataset(**dict(zip(keys, tl_parts))), td.StackDataset(**dict(zip(keys, th_parts)))
    return tld.StackDataset(*tl_parts), td.StackDataset(*th_parts)


def _same(a, b):
    """Nested structure and values equal (torch tensors compared as arrays)."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b)
        for k in b:
            _same(a[k], b[k])
    elif isinstance(b, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), (a, b)
        for u, v in zip(a, b):
            _same(u, v)
    elif isinstance(b, torch.Tensor):
        np.testing.assert_array_equal(np.asarray(a), to_numpy(b))
    else:
        assert a == b


@pytest.mark.parametrize("as_dict", [False, True])
def test_stack_dataset_items_and_len(as_dict):
    x, y, words = _arrays()
    tl, th = _both(x, y, words, as_dict)
    assert len(tl) == len(th) == 7
    assert type(tl.datasets) is type(th.datasets)
    for i in (0, 3, -1):
        _same(tl[i], th[i])
    _same(tl.__getitems__([4, 0, 4]), th.__getitems__([4, 0, 4]))
    assert isinstance(tl, tld.Dataset)


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("collate", ["default", "custom"])
def test_stack_dataset_in_dataloader_matches_torch(as_dict, collate):
    x, y, _ = _arrays()
    # python floats, not strings: torchlite's default_collate gives a list of strings where torch keeps the tuple
    tl, th = _both(x, y, [i / 2 for i in range(7)], as_dict)
    kw = {} if collate == "default" else dict(collate_fn=lambda batch: batch)
    tl_batches = list(tld.DataLoader(tl, batch_size=3, **kw))
    th_batches = list(td.DataLoader(th, batch_size=3, **kw))
    assert len(tl_batches) == len(th_batches) == 3
    for a, b in zip(tl_batches, th_batches):
        _same(a, b)


@pytest.mark.parametrize("as_dict", [False, True])
def test_get_batch_fast_path_only_when_every_part_has_one(as_dict):
    x, y, _ = _arrays()
    parts = (tld.TensorDataset(x), tld.Subset(tld.TensorDataset(y), list(range(7))))
    stack = tld.StackDataset(**dict(zip("ab", parts))) if as_dict else tld.StackDataset(*parts)
    idx = [5, 1, 1]
    _same_np(stack.get_batch(idx), tld.default_collate([stack[i] for i in idx]))
    mixed = tld.StackDataset(tld.TensorDataset(x), y)  # a plain array has no get_batch
    assert not hasattr(mixed, "get_batch")
    with pytest.raises(AttributeError, match="'StackDataset' object has no attribute 'nope'"):
        stack.nope


def _same_np(a, b):
    if isinstance(b, dict):
        assert list(a) == list(b)
        for k in b:
            _same_np(a[k], b[k])
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b)
        for u, v in zip(a, b):
            _same_np(u, v)
    else:
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


class _Short:
    """A dataset whose __getitems__ drops a sample."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i

    def __getitems__(self, indices):
        return list(indices)[:-1]


@pytest.mark.parametrize("lib", [tld, td])
def test_errors_as_torch(lib):
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        lib.StackDataset()
    with pytest.raises(ValueError, match="but both types are given"):
        lib.StackDataset([1, 2], b=[3, 4])
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        lib.StackDataset([1, 2], [3])
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        lib.StackDataset(a=[1, 2], b=[3])
    for stack in (lib.StackDataset(_Short(), [0, 1, 2, 3]), lib.StackDataset(a=_Short())):
        with pytest.raises(ValueError, match="Nested dataset's output size mismatch. Expected 2, got 1"):
            stack.__getitems__([0, 1])
    with pytest.raises(IndexError):
        lib.StackDataset([1, 2])[2]


class _Probe(tld.Dataset):
    """Records get_worker_info() as seen while the DataLoader reads a sample."""

    def __init__(self, get_worker_info):
        self.get_worker_info = get_worker_info
        self.seen = []

    def __len__(self):
        return 4

    def __getitem__(self, i):
        self.seen.append(self.get_worker_info())
        return np.float64(i)


def test_get_worker_info_is_none_outside_workers_as_torch():
    assert tld.get_worker_info() is None and td.get_worker_info() is None
    for lib in (tld, td):  # with workers, __getitem__ runs on their copies (tests/test_dataloader_workers.py)
        probe = _Probe(lib.get_worker_info)
        batches = list(lib.DataLoader(probe, batch_size=2))
        assert len(batches) == 2 and probe.seen == [None] * 4


@pytest.mark.parametrize("as_dict", [False, True])
def test_dataloader_through_get_batch_matches_torch(as_dict):
    x, y, _ = _arrays()
    tl_parts = (tld.TensorDataset(x), tld.TensorDataset(y, x))
    th_parts = (td.TensorDataset(torch.from_numpy(x)), td.TensorDataset(torch.from_numpy(y), torch.from_numpy(x)))
    if as_dict:
        tl, th = tld.StackDataset(a=tl_parts[0], b=tl_parts[1]), td.StackDataset(a=th_parts[0], b=th_parts[1])
    else:
        tl, th = tld.StackDataset(*tl_parts), td.StackDataset(*th_parts)
    assert callable(tl.get_batch)
    sampler = [6, 0, 3, 2, 5, 1, 4]
    for a, b in zip(tld.DataLoader(tl, batch_size=4, sampler=sampler),
                    td.DataLoader(th, batch_size=4, sampler=sampler)):
        _same(a, b)


def test_distributed_sampler_is_reachable_from_data_as_in_torch():
    from torchlite.distributed import DistributedSampler
    assert tld.DistributedSampler is DistributedSampler
    ours = list(tld.DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    assert ours == list(td.DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    with pytest.raises(AttributeError):
        tld.NoSuchThing


def test_torch_path_utils_data_is_torchlite_data():
    import torchlite
    import torchlite.utils.data as utils_data
    from torchlite.utils.data import DataLoader, TensorDataset
    assert utils_data is tld and torchlite.utils.data is tld
    assert DataLoader is tld.DataLoader and TensorDataset is tld.TensorDataset
