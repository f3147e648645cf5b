"""Time one full-size synthetic set: AIA 304/193/171 + HMI at 4096 px, EUVI-A 304/195/171 at 2048.

    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py [--size 4096] [--euvi-size 2048] [--out DIR]

Prints seconds per file and in total (the target is under a minute on 2 cores). Files go to a
temporary directory unless --out is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--euvi-size", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--time", default="2012-07-01T00:00:00")
    args = parser.parse_args()

    from farside_gan.synthetic import SyntheticSun, build_archive
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        start = time.perf_counter()
        sun = SyntheticSun(seed=0)
        rows = build_archive(root, [datetime.fromisoformat(args.time)], instruments=("aia", "hmi", "euvi_a"),
                             size=args.size, euvi_size=args.euvi_size, seed=0, sun=sun, progress=True)
        total = time.perf_counter() - start
        mbytes = sum(r["size"] for r in rows) / 1e6
    print(f"{len(rows)} files ({mbytes:.0f} MB), AIA/HMI {args.size} px, EUVI-A {args.euvi_size} px: "
          f"{total:.1f} s total, {total / len(rows):.1f} s per file")


if __name__ == "__main__":
    main()
