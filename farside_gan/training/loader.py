"""A batch loader that reads samples with threads of this process instead of worker processes.

torch's DataLoader workers hand each sample to the trainer through shared memory; for
1024 px FITS pairs (16 MB a sample) that hand-over, not the reading, capped the loader below
what the GPU takes (measured in benchmarks/README.md). FITS reading and the numpy work release
the GIL, so threads read in parallel.

Datasets that can read an item straight into given arrays (``reads_into`` true and a
``read_into(index, outputs)`` method, as :class:`~farside_gan.training.data.PairedFitsDataset`
without rotation or translation) take the direct path: each batch is allocated once, pinned
when asked (torch's caching host allocator, safe with ``non_blocking`` copies), and every
reader thread copies its sample from the memory-mapped files into its rows, so a sample's bytes
are moved once instead of through a read buffer, a collate copy and a pinning copy. Other
datasets go
through ``__getitem__`` and ``default_collate``. Batches are exactly those of
``DataLoader(dataset, batch_size, sampler=order)`` either way.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.utils.data import default_collate


def _pin(batch):
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: _pin(v) for k, v in batch.items()}
    return batch


class _BatchRows:
    """One batch's ``input`` and ``target`` tensors, allocated when the first reader of the
    batch knows the stack shape; ``rows(k)`` is the ``outputs`` callable of sample k."""

    def __init__(self, size: int, pin: bool):
        self.size, self.pin, self.lock = size, pin, threading.Lock()
        self.input = self.target = None

    def rows(self, k: int):
        def outputs(shape):
            with self.lock:
                if self.input is None:
                    c, h, w = shape
                    self.input = torch.empty((self.size, c, h, w), dtype=torch.float32,
                                             pin_memory=self.pin)
                    self.target = torch.empty((self.size, 1, h, w), dtype=torch.float32,
                                              pin_memory=self.pin)
            return self.input[k].numpy(), self.target[k].numpy()
        return outputs


class ThreadedLoader:
    """Iterate collated batches of ``dataset`` in the order of ``sampler`` (a list of indices).

    ``threads`` read samples concurrently; up to ``prefetch`` batches are in flight ahead of
    the consumer. The last batch may be smaller (like DataLoader's ``drop_last=False``).
    ``direct`` picks the path (see the module docstring): None uses the direct one where the
    dataset offers it. A reader's error is raised by the iterator when its batch is due.
    """

    def __init__(self, dataset, batch_size: int, sampler, threads: int = 8, prefetch: int = 4,
                 pin_memory: bool = False, direct: bool | None = None):
        if threads < 1 or prefetch < 1 or batch_size < 1:
            raise ValueError("threads, prefetch and batch_size must be at least 1")
        can = bool(getattr(dataset, "reads_into", False)) and hasattr(dataset, "read_into")
        if direct and not can:
            raise ValueError(f"{type(dataset).__name__} cannot read items into a batch "
                             "(no read_into, or a rotation or translation to apply)")
        self.dataset, self.batch_size, self.order = dataset, batch_size, list(sampler)
        self.threads, self.prefetch, self.pin_memory = threads, prefetch, pin_memory
        self.direct = can if direct is None else direct

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __iter__(self):
        chunks = iter([self.order[i:i + self.batch_size]
                       for i in range(0, len(self.order), self.batch_size)])
        readers = ThreadPoolExecutor(self.threads, thread_name_prefix="loader-read")
        builders = None if self.direct else ThreadPoolExecutor(2, thread_name_prefix="loader-batch")
        pending = collections.deque()

        def build(futures):
            batch = default_collate([f.result() for f in futures])
            return _pin(batch) if self.pin_memory else batch

        def submit_next() -> None:
            indices = next(chunks, None)
            if indices is None:
                return
            if self.direct:
                rows = _BatchRows(len(indices), self.pin_memory)
                futures = [readers.submit(self.dataset.read_into, i, rows.rows(k))
                           for k, i in enumerate(indices)]
                pending.append((indices, rows, futures))
            else:
                futures = [readers.submit(self.dataset.__getitem__, i) for i in indices]
                pending.append(builders.submit(build, futures))

        def take():
            if not self.direct:
                return pending.popleft().result()  # re-raises a reader's error here
            indices, rows, futures = pending.popleft()
            for f in futures:  # the first failed sample in batch order, as DataLoader
                f.result()
            index = torch.tensor(indices, dtype=torch.int64)
            return {"input": rows.input, "target": rows.target,
                    "index": index.pin_memory() if self.pin_memory else index}

        try:
            for _ in range(self.prefetch):
                submit_next()
            while pending:
                batch = take()
                submit_next()
                yield batch
        finally:
            # Waits for reads in flight (at most one per thread) so that no thread outlives
            # the iteration or writes into a batch after it.
            readers.shutdown(wait=True, cancel_futures=True)
            if builders is not None:
                builders.shutdown(wait=True, cancel_futures=True)
