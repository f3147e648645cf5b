"""A batch loader that reads samples with threads of this process instead of worker processes.

torch's DataLoader workers hand each sample to the trainer through shared memory; for
1024 px FITS pairs (16 MB a sample) that hand-over, not the reading, capped the loader at
~65 samples/s on the H100 machine (benchmarks/README.md). FITS reading and the numpy work
release the GIL, so threads read in parallel and the batch is built once, in pinned memory.
Batches are exactly those of ``DataLoader(dataset, batch_size, sampler=order)``.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.utils.data import default_collate


def _pin(batch):
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: _pin(v) for k, v in batch.items()}
    return batch


class ThreadedLoader:
    """Iterate collated batches of ``dataset`` in the order of ``sampler`` (a list of indices).

    ``threads`` read samples concurrently; up to ``prefetch`` batches are in flight ahead of
    the consumer. The last batch may be smaller (like DataLoader's ``drop_last=False``).
    """

    def __init__(self, dataset, batch_size: int, sampler, threads: int = 8, prefetch: int = 4,
                 pin_memory: bool = False):
        if threads < 1 or prefetch < 1 or batch_size < 1:
            raise ValueError("threads, prefetch and batch_size must be at least 1")
        self.dataset, self.batch_size, self.order = dataset, batch_size, list(sampler)
        self.threads, self.prefetch, self.pin_memory = threads, prefetch, pin_memory

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __iter__(self):
        chunks = iter([self.order[i:i + self.batch_size]
                       for i in range(0, len(self.order), self.batch_size)])
        readers = ThreadPoolExecutor(self.threads, thread_name_prefix="loader-read")
        builders = ThreadPoolExecutor(2, thread_name_prefix="loader-batch")
        pending = collections.deque()

        def build(futures):
            batch = default_collate([f.result() for f in futures])
            return _pin(batch) if self.pin_memory else batch

        def submit_next() -> None:
            indices = next(chunks, None)
            if indices is not None:
                futures = [readers.submit(self.dataset.__getitem__, i) for i in indices]
                pending.append(builders.submit(build, futures))

        try:
            for _ in range(self.prefetch):
                submit_next()
            while pending:
                batch = pending.popleft().result()  # re-raises a reader's error here
                submit_next()
                yield batch
        finally:
            readers.shutdown(wait=False, cancel_futures=True)
            builders.shutdown(wait=False, cancel_futures=True)
