"""torchlite's thread pool for copies and elementwise work: chunking, errors, nesting, thread count."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import torchlite
from torchlite import _parallel
from torchlite._parallel import MIN_PARALLEL_WORK, parallel_for


@pytest.fixture
def threads():
    old = torchlite.get_num_threads()
    yield torchlite.set_num_threads
    torchlite.set_num_threads(old)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 100])
def test_chunks_cover_the_range_once(threads, n_threads, n):
    threads(n_threads)
    hits = np.zeros(n, int)
    seen = []

    def body(lo, hi):
        hits[lo:hi] += 1
        seen.append((lo, hi, threading.current_thread().name))

    parallel_for(n, body, work=n * MIN_PARALLEL_WORK)
    assert (hits == 1).all()
    assert len(seen) == max(1, min(n_threads, n))
    if len(seen) > 1:  # the caller runs the first chunk, workers the rest
        assert len({name for *_, name in seen}) == len(seen)


def test_small_work_runs_inline(threads):
    threads(2)
    names = []
    parallel_for(100, lambda lo, hi: names.append((lo, hi, threading.current_thread().name)), work=1000)
    assert names == [(0, 100, threading.current_thread().name)]


def test_an_error_in_a_worker_chunk_is_raised_after_all_chunks_finish(threads):
    threads(2)
    done = []

    def body(lo, hi):
        if lo > 0:
            raise ValueError("bad chunk")
        done.append(lo)

    with pytest.raises(ValueError, match="bad chunk"):
        parallel_for(10, body, work=10 * MIN_PARALLEL_WORK)
    assert done == [0]


def test_nested_calls_run_inline_in_workers(threads):
    threads(2)
    out = np.zeros(4, int)

    def inner(lo, hi):
        out[lo:hi] += 1

    def outer(lo, hi):
        parallel_for(4, inner, work=4 * MIN_PARALLEL_WORK) if lo == 1 else None

    parallel_for(2, outer, work=2 * MIN_PARALLEL_WORK)
    assert (out == 1).all()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_ints(bad):
    with pytest.raises(ValueError, match="expected a positive int"):
        torchlite.set_num_threads(bad)


def test_get_num_threads_follows_set(threads):
    threads(3)
    assert torchlite.get_num_threads() == 3


@pytest.mark.parametrize("var", ["TORCHLITE_NUM_THREADS", "OMP_NUM_THREADS"])
def test_default_thread_count_from_environment(var):
    env = {k: v for k, v in os.environ.items() if k not in ("TORCHLITE_NUM_THREADS", "OMP_NUM_THREADS")}
    env[var] = "3"
    out = subprocess.run([sys.executable, "-c", "import torchlite; print(torchlite.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_forked_child_gets_a_working_pool(threads):
    threads(2)
    parallel_for(2, lambda lo, hi: None, work=2 * MIN_PARALLEL_WORK)  # start the pool in the parent
    pid = os.fork()
    if pid == 0:  # child: the parent's pool threads do not exist here
        try:
            hits = np.zeros(2, int)

            def body(lo, hi):
                hits[lo:hi] += 1

            parallel_for(2, body, work=2 * MIN_PARALLEL_WORK)
            os._exit(0 if (hits == 1).all() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert _parallel._pool is not None
