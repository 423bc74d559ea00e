"""DataLoader with worker processes (num_workers > 0), against torch.utils.data (torch 2.13)."""
import gc
import inspect
import math
import multiprocessing
import os
import time
import warnings

import numpy as np
import pytest
import torch.utils.data as tud

import torchlite
import torchlite.data as tld
import torchlite.data._multiprocessing as tl_mp
from torchlite.data import DataLoader, get_worker_info


class Probe(tld.Dataset):
    """Sample i: [i, pid, worker id (-1 in the main process), a draw from torchlite's generator, tag]."""

    def __init__(self, n=10, fail_at=None, sleep=None, exit_at=None):
        self.n, self.fail_at, self.sleep, self.exit_at = n, fail_at, sleep or {}, exit_at
        self.tag = -1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"bad index {i}")
        if i == self.exit_at:
            os._exit(3)
        time.sleep(self.sleep.get(i, 0))
        info = get_worker_info()
        draw = int(torchlite.get_generator().integers(2**30))
        return np.array([i, os.getpid(), -1 if info is None else info.id, draw, self.tag])


class RangeStream(tld.IterableDataset, tud.IterableDataset):
    """range(start, end); sharded between workers as torch's IterableDataset docs show, when ``shard``."""

    def __init__(self, start, end, shard, get_info):
        self.start, self.end, self.shard, self.get_info = start, end, shard, get_info

    def __iter__(self):
        start, end = self.start, self.end
        info = self.get_info()
        if self.shard and info is not None:
            per_worker = math.ceil((end - start) / info.num_workers)
            start = start + info.id * per_worker
            end = min(start + per_worker, end)
        return iter(range(start, end))


def _plain(batch):
    return batch.tolist() if hasattr(batch, "tolist") else batch


def _our_children():
    """pid -> cmdline of this process's children, zombies included (reading /proc reaps nothing)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid():
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    children[int(entry)] = f.read()
        except (FileNotFoundError, ProcessLookupError):
            pass
    return children


def _worker_children():
    """Child processes other than multiprocessing's long-lived helpers (spawn's resource tracker)."""
    return {pid for pid, cmd in _our_children().items() if b"resource_tracker" not in cmd and b"forkserver" not in cmd}


def _pids(batches):
    return {int(p) for b in batches for p in b[:, 1]}


def test_signature_is_torchs():
    ours = inspect.signature(DataLoader.__init__).parameters
    theirs = inspect.signature(tud.DataLoader.__init__).parameters
    assert list(ours) == list(theirs)
    for name, p in theirs.items():
        assert (ours[name].kind, ours[name].default) == (p.kind, p.default), name


def test_batches_come_from_worker_processes_round_robin_and_in_order():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # more workers than this machine's CPUs: torch's warning
        batches = list(DataLoader(Probe(11), batch_size=2, num_workers=3))
    assert [b[:, 0].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10]]
    assert [int(b[0, 2]) for b in batches] == [0, 1, 2, 0, 1, 2]  # batch k from worker k % 3
    for b in batches:
        assert len(set(b[:, 1].tolist())) == 1  # a batch is read by one worker
    pids = _pids(batches)
    assert len(pids) == 3 and os.getpid() not in pids
    assert not _worker_children() & pids  # spent iterator: workers joined, no zombies


def test_samplers_batch_samplers_and_unbatched_as_without_workers():
    def run(workers, **kwargs):
        torchlite.manual_seed(11)
        return [_plain(b) for b in DataLoader(Probe(9), num_workers=workers, **kwargs)]

    for kwargs in (dict(batch_size=4, shuffle=True), dict(batch_size=4, drop_last=True),
                   dict(batch_sampler=[[3, 1], [0], [8, 2, 5]]), dict(batch_size=None, sampler=[4, 2, 7])):
        zero, two = run(0, **kwargs), run(2, **kwargs)
        assert [np.asarray(b)[..., 0].tolist() for b in zero] == [np.asarray(b)[..., 0].tolist() for b in two]
        assert len(DataLoader(Probe(9), num_workers=2, **kwargs)) == len(zero)
    # the loader's own generator gives the same order too (base_seed is drawn with or without workers)
    orders = [[int(i) for b in DataLoader(Probe(9), batch_size=4, shuffle=True, num_workers=w,
                                           generator=np.random.default_rng(2)) for i in b[:, 0]] for w in (0, 2)]
    assert orders[0] == orders[1] != list(range(9))


def _pid_collate(batch):
    return {"x": tld.default_collate(batch), "collated_in": os.getpid()}


def test_collate_runs_in_the_worker_and_structures_come_back():
    ds = tld.StackDataset(a=tld.TensorDataset(np.arange(6.0).reshape(3, 2)), b=[(1, "u"), (2, "v"), (3, "w")])
    zero, two = list(DataLoader(ds, batch_size=2)), list(DataLoader(ds, batch_size=2, num_workers=2))
    for z, t in zip(zero, two, strict=True):
        np.testing.assert_array_equal(z["a"][0], t["a"][0])
        np.testing.assert_array_equal(z["b"][0], t["b"][0])
        assert z["b"][1] == t["b"][1]
    batches = list(DataLoader(Probe(4), batch_size=2, num_workers=2, collate_fn=_pid_collate, pin_memory=True))
    assert [b["collated_in"] for b in batches] == [int(b["x"][0, 1]) for b in batches]
    assert os.getpid() not in {b["collated_in"] for b in batches}


def test_in_order_waits_for_a_slow_worker_and_in_order_false_does_not():
    slow = {0: 0.4}  # worker 0's first batch is late
    ordered = [int(b[0, 0]) for b in DataLoader(Probe(6, sleep=slow), batch_size=1, num_workers=2)]
    assert ordered == list(range(6))
    loose = [int(b[0, 0]) for b in DataLoader(Probe(6, sleep=slow), batch_size=1, num_workers=2, in_order=False)]
    assert loose[0] != 0 and sorted(loose) == list(range(6))


class Counted(tld.Dataset):
    """Counts the fetches of all workers in a shared counter."""

    def __init__(self, n):
        self.n, self.count = n, multiprocessing.Value("i", 0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.count.get_lock():
            self.count.value += 1
        return i


def _settle(counter, expected, limit=5.0):
    end = time.monotonic() + limit
    while counter.value < expected and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.1)  # and nothing beyond it
    return counter.value


@pytest.mark.parametrize("prefetch_factor", [1, 3])
def test_prefetch_factor_batches_per_worker_in_flight(prefetch_factor):
    ds = Counted(40)
    it = iter(DataLoader(ds, batch_size=1, num_workers=2, prefetch_factor=prefetch_factor))
    assert _settle(ds.count, 2 * prefetch_factor) == 2 * prefetch_factor
    assert next(it).tolist() == [0]
    assert _settle(ds.count, 2 * prefetch_factor + 1) == 2 * prefetch_factor + 1  # one out, one more in


def test_persistent_workers_live_across_epochs_and_stop_with_the_loader():
    loader = DataLoader(Probe(8), batch_size=2, num_workers=2, persistent_workers=True)
    first = list(loader)
    for b in loader:  # an epoch left early: its outstanding batches must not leak into the next
        break
    second = list(loader)
    assert [b[:, 0].tolist() for b in first] == [b[:, 0].tolist() for b in second]
    assert _pids(first) == _pids(second) <= _worker_children()
    del loader, b
    assert not _worker_children() & _pids(first)
    transient = DataLoader(Probe(8), batch_size=2, num_workers=2)
    assert not _pids(list(transient)) & _pids(list(transient))  # new workers each epoch


def test_persistent_workers_restart_an_iterable_dataset_each_epoch():
    loader = DataLoader(RangeStream(0, 7, True, get_worker_info), batch_size=2, num_workers=2,
                        persistent_workers=True)
    epochs = [[_plain(b) for b in loader] for _ in range(3)]
    assert epochs[0] == epochs[1] == epochs[2] == [[0, 1], [4, 5], [2, 3], [6]]


def test_early_break_and_garbage_collection_end_the_workers():
    loader = DataLoader(Probe(40), batch_size=2, num_workers=2)
    for b in loader:
        break
    pid = int(b[0, 1])
    assert pid not in _worker_children()
    it = iter(loader)
    pids = _pids([next(it), next(it)])
    assert pids <= _worker_children()
    del it
    assert not _worker_children() & pids


def test_an_iterator_collected_in_a_reference_cycle_stops_its_workers_at_once():
    it = iter(DataLoader(Probe(40), batch_size=2, num_workers=2))
    pids = _pids([next(it), next(it)])
    it.cycle = it
    del it
    start = time.monotonic()
    gc.collect()
    assert time.monotonic() - start < 2 and not _worker_children() & pids


def test_get_worker_info_and_worker_init_fn():
    seen = []

    def init(worker_id):
        info = get_worker_info()
        info.dataset.tag = 10 * worker_id  # the worker's own copy
        seen.append(worker_id)

    ds = Probe(6)
    batches = list(DataLoader(ds, batch_size=3, num_workers=2, worker_init_fn=init))
    assert [b[:, 4].tolist() for b in batches] == [[0, 0, 0], [10, 10, 10]]
    assert ds.tag == -1 and seen == [] and get_worker_info() is None  # the main process's copy is untouched
    info = next(iter(DataLoader(InfoProbe(), num_workers=1, collate_fn=lambda batch: batch)))[0]
    assert type(info).__name__ == "WorkerInfo"
    assert (info.id, info.num_workers, type(info.dataset).__name__) == (0, 1, "InfoProbe")
    with pytest.raises(Exception):
        info.id = 3  # frozen, as torch's


class InfoProbe(tld.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return get_worker_info()


class SeedProbe(tld.Dataset):
    """(worker seed, torchlite.initial_seed(), a draw from torchlite's generator)."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return get_worker_info().seed, torchlite.initial_seed(), int(torchlite.get_generator().integers(2**62))


def _seed_run(**kwargs):
    return list(DataLoader(SeedProbe(), batch_size=None, num_workers=2, collate_fn=lambda s: s, **kwargs))


def test_worker_seeds_as_torch():
    base = int(np.random.default_rng(3).integers(2**63))
    samples = _seed_run(generator=np.random.default_rng(3))
    assert [s[:2] for s in samples] == [(base, base), (base + 1, base + 1)] * 2  # seed = base_seed + worker id
    assert samples[0][2] != samples[1][2]  # workers draw different numbers
    torchlite.manual_seed(5)
    first = _seed_run()
    after = torchlite.get_generator().random()
    torchlite.manual_seed(5)
    assert _seed_run() == first  # a run repeats after manual_seed
    assert first[0][0] == int(np.random.Generator(np.random.PCG64(5)).integers(2**63))
    torchlite.manual_seed(5)
    torchlite.get_generator().integers(2**63)
    assert torchlite.get_generator().random() == after  # one draw from the global generator per iterator
    torchlite.manual_seed(6)
    assert _seed_run() != first


@pytest.mark.parametrize("start, end, shard, batch_size, drop_last", [
    (0, 5, False, 2, False),  # every worker yields the whole dataset
    (0, 7, True, 2, False),  # sharded, uneven: the workers end at different batches
    (0, 7, True, 3, True),  # drop_last drops each worker's short last batch
    (0, 1, True, 2, False),  # one worker has nothing
    (0, 5, True, None, False),  # unbatched
])
def test_iterable_dataset_per_worker_as_torch(start, end, shard, batch_size, drop_last):
    ours = DataLoader(RangeStream(start, end, shard, get_worker_info), batch_size=batch_size, drop_last=drop_last,
                      num_workers=2)
    theirs = tud.DataLoader(RangeStream(start, end, shard, tud.get_worker_info), batch_size=batch_size,
                            drop_last=drop_last, num_workers=2)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]


def _error_text(loader):
    """The ValueError iterating ``loader`` raises, as text (the error, which holds the iterator, is dropped)."""
    try:
        for _ in loader:
            pass
    except ValueError as e:
        # torch's traceback is a reference cycle that holds its iterator; shut down later by the
        # garbage collector, torch's iterator waits 2 x 5 s for its workers, so the cycle is cut here
        e.__traceback__ = None
        return str(e)
    raise AssertionError("no ValueError")


def test_worker_error_is_reraised_with_its_traceback_and_the_workers_end():
    before = _worker_children()
    with pytest.raises(ValueError) as ours:
        for _ in DataLoader(Probe(8, fail_at=3), batch_size=2, num_workers=2):
            pass
    assert _worker_children() <= before  # though the error is still held
    ours = str(ours.value)
    theirs = _error_text(tud.DataLoader(Probe(8, fail_at=3), batch_size=2, num_workers=2))
    head = "Caught ValueError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n"
    assert ours.startswith(head) and theirs.startswith(head)
    assert ours.rstrip().endswith("ValueError: bad index 3") and theirs.rstrip().endswith("ValueError: bad index 3")
    assert "in __getitem__" in ours and 'raise ValueError(f"bad index {i}")' in ours


def test_iteration_goes_on_after_a_worker_error_as_torch():
    it = iter(DataLoader(Probe(6, fail_at=2), batch_size=2, num_workers=2))
    assert next(it)[:, 0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="worker process 1"):
        next(it)
    assert next(it)[:, 0].tolist() == [4, 5]
    with pytest.raises(StopIteration):
        next(it)


def _failing_init(worker_id):
    raise KeyError(f"no setup for {worker_id}")


def test_worker_init_fn_error_is_raised_at_the_first_batch():
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0") as err:
        list(DataLoader(Probe(4), batch_size=2, num_workers=1, worker_init_fn=_failing_init))
    assert repr(err.value.args[0]).rstrip().endswith("KeyError: 'no setup for 0'")  # readable, not a repr of the text


def test_timeout_raises_as_torch():
    loader = DataLoader(Probe(4, sleep={0: 0.5}), batch_size=2, num_workers=1, timeout=0.1)
    before = _worker_children()
    with pytest.raises(RuntimeError, match=r"^DataLoader timed out after 0.1 seconds$"):
        next(iter(loader))
    assert _worker_children() <= before
    assert len(list(DataLoader(Probe(4), batch_size=2, num_workers=1, timeout=5))) == 2


def test_a_dead_worker_is_an_error(monkeypatch):
    monkeypatch.setattr(tl_mp, "_MP_STATUS_CHECK_INTERVAL", 0.05)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(DataLoader(Probe(4, exit_at=2), batch_size=2, num_workers=2))


def test_multiprocessing_context_string_or_object():
    ds = tld.TensorDataset(np.arange(6))
    for context in ("spawn", multiprocessing.get_context("fork")):
        loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context=context)
        assert isinstance(loader.multiprocessing_context, multiprocessing.context.BaseContext)
        assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5]]
    for bad, error in (("bogus", ValueError), (42, TypeError)):
        with pytest.raises(error) as ours:
            DataLoader(ds, num_workers=1, multiprocessing_context=bad)
        with pytest.raises(error) as theirs:
            tud.DataLoader(ds, num_workers=1, multiprocessing_context=bad)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="num_workers > 0"):
        DataLoader(ds).multiprocessing_context = "fork"


def test_more_workers_than_cpus_warns_as_torch():
    n = len(os.sched_getaffinity(0)) + 1
    with pytest.warns(UserWarning) as ours:
        DataLoader(range(4), num_workers=n)
    with pytest.warns(UserWarning) as theirs:
        tud.DataLoader(range(4), num_workers=n)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


def test_workers_read_in_parallel():
    def seconds(workers):
        start = time.perf_counter()
        list(DataLoader(Probe(64, sleep=dict.fromkeys(range(64), 0.005)), batch_size=8, num_workers=workers))
        return time.perf_counter() - start

    assert seconds(2) < 0.8 * seconds(0)
