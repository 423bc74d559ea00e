"""The DataLoader's iterator over worker processes, as torch's ``_MultiProcessingDataLoaderIter``.

The main process draws the batch indices and hands them out round-robin, one index queue per
worker, keeping ``prefetch_factor`` tasks per worker in flight. Workers (worker.py) put
``(task_idx, batch)`` on one shared result queue; batches are yielded in task order (results
that come early wait in ``_task_info``) unless ``in_order=False``. Workers stop when the
iterator is spent or dropped (``__del__``), except persistent ones, which a new epoch resumes.
"""
import atexit
import itertools
import multiprocessing
import os
import queue

from ..random import get_generator
from .worker import (_MP_STATUS_CHECK_INTERVAL, _ExceptionWrapper, _IterableDatasetStopIteration, _ResumeIteration,
                     _worker_loop)

__all__ = []

_python_exiting = False


def _set_python_exiting():
    global _python_exiting
    _python_exiting = True


# at exit, multiprocessing itself ends the (daemonic) workers; __del__ must not touch them then
atexit.register(_set_python_exiting)


def _draw_base_seed(generator):
    """One int64 seed per iterator, from the loader's generator or torchlite's global one."""
    return int((get_generator() if generator is None else generator).integers(2**63))


class _MultiProcessingDataLoaderIter:
    """Iterates once over the loader's dataset (or once per epoch, with persistent workers)."""

    def __init__(self, loader):
        self._shutdown = True  # until there is something to shut down (__del__ runs even if __init__ fails)
        # a forked worker holds a copy of this object; if that copy is collected there, it must not act
        self._owner_pid = os.getpid()
        self._iterable = loader._iterable
        self._num_workers = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        self._timeout = loader.timeout
        self._persistent_workers = loader.persistent_workers
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        self._base_seed = _draw_base_seed(loader.generator)
        context = loader.multiprocessing_context
        if context is None:
            context = multiprocessing.get_context()
        self._worker_result_queue = context.Queue()
        self._workers_done_event = context.Event()
        self._workers, self._index_queues = [], []
        self._workers_status = [True] * self._num_workers
        self._shutdown = False
        for worker_id in range(self._num_workers):
            # the index queue: a one-way pipe that only this process writes. A send needs no feeder
            # thread, which garbage collection may stop before __del__ runs, losing the final None.
            reader, writer = context.Pipe(duplex=False)
            w = context.Process(
                target=_worker_loop, daemon=True,
                args=(self._iterable, loader.dataset, reader, self._worker_result_queue,
                      self._workers_done_event, loader._auto_collation, loader.collate_fn, loader.drop_last,
                      self._base_seed, loader.worker_init_fn, worker_id, self._num_workers))
            w.start()
            reader.close()  # the worker's end
            # listed once started, so shutdown never joins a process that does not exist
            self._index_queues.append(writer)
            self._workers.append(w)
        self._reset(first_iter=True)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._index_sampler)

    def _reset(self, first_iter=False):
        """Start an epoch: a new pass of the sampler; persistent workers start their datasets over."""
        self._sampler_iter = iter(self._index_sampler)
        self._send_idx = 0  # the next task to hand out
        self._rcvd_idx = 0  # the next task to yield
        # task idx -> (worker_id,) while outstanding, (worker_id, data) once it came early
        self._task_info = {}
        # whether each worker still has data this epoch (False once its iterable dataset is spent)
        self._workers_status = [True] * self._num_workers
        self._workers_num_tasks = [0] * self._num_workers
        self._worker_queue_idx_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            for worker_id in range(self._num_workers):
                self._send(worker_id, _ResumeIteration())
            resumed = 0
            while resumed < self._num_workers:
                # results of the epoch left early come first; they are dropped
                return_idx, _ = self._get_data()
                resumed += isinstance(return_idx, _ResumeIteration)
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def __next__(self):
        data = self._next_data()
        if isinstance(data, _ExceptionWrapper):
            # the error's traceback must not hold the iterator: leaving the loop then frees the workers
            del self
            data.reraise()
        return data

    def _next_data(self):
        while True:
            # skip tasks of workers whose iterable dataset ended before answering them
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info:
                    if len(info) == 2 or self._workers_status[info[0]]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                worker_id, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)
            idx, data = self._get_data()
            if isinstance(data, _IterableDatasetStopIteration):
                if self._persistent_workers:
                    self._workers_status[data.worker_id] = False
                else:
                    self._mark_worker_as_unavailable(data.worker_id)
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    return self._process_data(data, self._task_info.pop(idx)[0])
                self._task_info[idx] += (data,)
            else:
                worker_id = self._task_info.pop(idx)[0]
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)

    def _try_put_index(self):
        """Hand the sampler's next index to the next worker (round-robin) that still has data."""
        max_tasks = self._prefetch_factor * self._num_workers
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker_id]:
                if self._in_order:
                    break
                # out of order, a slow worker is skipped once it holds its share of the tasks
                if self._workers_num_tasks[worker_id] < max_tasks // sum(self._workers_status):
                    break
        else:
            return
        self._send(worker_id, (self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._workers_num_tasks[worker_id] += 1
        self._send_idx += 1

    def _process_data(self, data, worker_id):
        self._workers_num_tasks[worker_id] -= 1
        self._try_put_index()
        return data

    def _get_data(self):
        if self._timeout > 0:
            success, data = self._try_get_data(self._timeout)
            if not success:
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
            return data
        while True:
            success, data = self._try_get_data(_MP_STATUS_CHECK_INTERVAL)
            if success:
                return data

    def _try_get_data(self, timeout):
        """(True, (task_idx, data)), or (False, None) when nothing came within ``timeout`` seconds;
        a worker that died meanwhile is an error."""
        try:
            return True, self._worker_result_queue.get(timeout=timeout)
        except queue.Empty as e:
            failed = [worker_id for worker_id, w in enumerate(self._workers)
                      if self._workers_status[worker_id] and not w.is_alive()]
            for worker_id in failed:
                self._mark_worker_as_unavailable(worker_id)
            if failed:
                pids = ", ".join(str(self._workers[worker_id].pid) for worker_id in failed)
                raise RuntimeError(f"DataLoader worker (pid(s) {pids}) exited unexpectedly") from e
            return False, None

    def _mark_worker_as_unavailable(self, worker_id):
        """Tell one worker to stop (its dataset is spent); it is joined in ``_shutdown_workers``."""
        self._send(worker_id, None)
        self._workers_status[worker_id] = False

    def _send(self, worker_id, message):
        try:
            self._index_queues[worker_id].send(message)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker died; _try_get_data reports it

    def _shutdown_workers(self):
        if _python_exiting or self._shutdown or os.getpid() != self._owner_pid:
            return
        self._shutdown = True
        try:
            self._workers_done_event.set()
            for worker_id in range(len(self._workers)):
                # persistent workers paused by a spent dataset still wait for their None
                if self._persistent_workers or self._workers_status[worker_id]:
                    self._mark_worker_as_unavailable(worker_id)
            for w in self._workers:
                w.join(timeout=_MP_STATUS_CHECK_INTERVAL)
            for index_queue in self._index_queues:
                index_queue.close()
        finally:
            for w in self._workers:
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=_MP_STATUS_CHECK_INTERVAL)

    def __del__(self):
        self._shutdown_workers()
