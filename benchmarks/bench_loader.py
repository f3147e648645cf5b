"""The threaded loader alone on 1024 px FITS pairs, on the CPU (no GPU, no training step).

    python benchmarks/bench_loader.py --dir /dev/shm --dir /tmp     # 24 pairs, 2 threads, batch 8

Prints, per directory: the single-thread read in ms/sample (``dataset[i]``, and
``read_into`` into reused rows where the dataset has it), then the samples/s of
``ThreadedLoader`` over all pairs, median of ``--passes`` passes, for each path it has (the
direct one and ``direct=False``, the ``__getitem__`` + collate one), passes interleaved. Works
on checkouts without the direct path too (``PYTHONPATH=OLD_CHECKOUT``), for before/after.
Batches are not pinned (no CUDA here), so each batch is fresh memory whose pages are faulted
in by the first write; pinned batches on a GPU host come from torch's caching allocator.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gpu import write_pairs  # noqa: E402

from farside_gan.training.data import PairedFitsDataset  # noqa: E402
from farside_gan.training.loader import ThreadedLoader  # noqa: E402


def ms_per_sample(read, n: int, repeats: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            read(i)
        times.append((time.perf_counter() - t0) * 1e3 / n)
    return min(times), statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", action="append", help="where to write the pairs (repeatable)")
    p.add_argument("--pairs", type=int, default=24)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prefetch", type=int, default=4)
    p.add_argument("--passes", type=int, default=7)
    a = p.parse_args(argv)
    has_direct = "direct" in inspect.signature(ThreadedLoader).parameters
    for where in a.dir or [tempfile.gettempdir()]:
        with tempfile.TemporaryDirectory(prefix="bench_loader_", dir=where) as tmp:
            write_pairs(Path(tmp), a.pairs, a.size)
            ds = PairedFitsDataset.from_directory(tmp)
            n = len(ds)
            for i in range(n):  # the files' pages in memory, as in every epoch after the first
                ds[i]
            print(f"{where}: {n} pairs of {a.size} px; single thread, best/median of 5 passes:")
            print("  dataset[i]          %6.2f / %6.2f ms/sample" % ms_per_sample(ds.__getitem__, n))
            if hasattr(ds, "read_into"):
                rows = (np.empty((3, a.size, a.size), np.float32),
                        np.empty((1, a.size, a.size), np.float32))
                print("  read_into (reused)  %6.2f / %6.2f ms/sample"
                      % ms_per_sample(lambda i: ds.read_into(i, lambda shape: rows), n))
            paths = {"direct": {"direct": True}, "collate": {"direct": False}} if has_direct \
                else {"collate (no direct path)": {}}
            rates = {name: [] for name in paths}
            for _ in range(a.passes):
                for name, kw in paths.items():
                    loader = ThreadedLoader(ds, a.batch, list(range(n)), threads=a.threads,
                                            prefetch=a.prefetch, **kw)
                    t0, seen = time.perf_counter(), 0
                    for batch in loader:
                        seen += batch["input"].shape[0]
                    rates[name].append(seen / (time.perf_counter() - t0))
            for name, r in rates.items():
                print(f"  ThreadedLoader {name}, threads={a.threads} batch={a.batch}: median "
                      f"{statistics.median(r):.1f} samples/s (passes: "
                      f"{', '.join(f'{x:.0f}' for x in sorted(r))})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
