"""What the GAN is asked to learn from the synthetic Sun, at the sizes the tests and demo use.

    OMP_NUM_THREADS=1 python benchmarks/bench_synthetic_field.py [--sizes 64,128,256] [--times 4]

For each size, synthetic HMI magnetograms go through the real chain (calibrate -> align ->
normalize, as ``tests/helpers/model.py`` runs it) and the script prints the on-disk |B|
distribution (percentiles, max, fraction above 500 G) and two binned (n/16 x n/16: 4x4 at 64 px, as the training tests) on-disk CCs
with the truth: that of |B| (what EUV brightness gives without a sign: ~0) and that of the
synthetic Sun's sign-blind ceiling (every active region with its Hale sign, polar caps kept,
network and coronal holes zeroed: `SyntheticSun.ceiling_los_field`) -- the most a model that
sees only |B| can reach.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--times", type=int, default=4, help="times, 9 days apart from 2012-01-01")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers.model import synthetic_pipeline_frames

    from farside_gan.core.geometry import IMAGE_SIZE, RSUN_PX
    from farside_gan.core.metrics import bin_image, bin_mask, pearson_cc
    from farside_gan.prepare.calibrate import load_calibration_tables, write_demo_calibration_tables
    from farside_gan.synthetic import SyntheticSun

    times = [datetime(2012, 1, 1) + timedelta(days=9 * i) for i in range(args.times)]
    sun = SyntheticSun(seed=0)
    print("active regions alive (whole Sun):", [len(sun.active_regions(t)) for t in times])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tables = load_calibration_tables(write_demo_calibration_tables(tmp / "cal")[0].parent)
        for n in (int(s) for s in args.sizes.split(",")):
            start = time.perf_counter()
            values, cc_abs, cc_ceiling = [], [], []
            f = max(n // 16, 1)   # as the tests: 4x4 at 64 px, 8x8 at 128
            for t in times:
                (hmi,) = synthetic_pipeline_frames(tmp, sun, tables, "hmi", t, n, 2 * n, 0)
                field = hmi[0] * hmi[1]["NORMCLIP"]
                y, x = np.indices(field.shape) - (n - 1) / 2
                disk = np.hypot(x, y) < 0.98 * n * RSUN_PX / IMAGE_SIZE
                field = np.where(disk, field, 0.0)
                values.append(np.abs(field[disk]))
                ceiling = np.where(disk, np.nan_to_num(sun.ceiling_los_field(hmi[1])), 0.0)
                for pred, ccs in ((np.abs(field), cc_abs), (ceiling, cc_ceiling)):
                    ccs.append(pearson_cc(bin_image(pred, f), bin_image(field, f), bin_mask(disk, f)))
            a = np.concatenate(values)
            p50, p90, p99, p999 = np.percentile(a, [50, 90, 99, 99.9])
            print(f"{n:4d} px: |B| p50 {p50:.0f} p90 {p90:.0f} p99 {p99:.0f} p99.9 {p999:.0f} "
                  f"max {a.max():.0f} G; >500 G {100 * np.mean(a > 500):.2f}% of the disk; binned "
                  f"({f}x{f}) CC with truth: |B| {np.mean(cc_abs):.2f}, sign-blind ceiling "
                  f"{np.mean(cc_ceiling):.2f} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
