"""The Hale-rule oracle on the maps of an accuracy-benchmark run, recomputed without the run.

    python benchmarks/bench_oracle.py \
        benchmarks/results/2026-12-01_h200_accuracy-synthetic-2012/cc_200/metrics.csv

The truth a map is scored against depends only on the synthetic Sun and the map's geometry
(observer, time, grid), which the benchmark configuration fixes: each map's aligned header is
rebuilt from the archive's own observation plan (``synthetic.archive.plan_observation``, the 304
channel whose DATE-OBS the stack carries) and align's ``output_header``, its truth from
``synthetic.truth.truth_map``. The rebuilt truth's unsigned flux is checked against the run's
own (``unsigned_flux_real``, 0.1%), so the oracle is scored on the same truth the model was.
Prints, per comparison, the oracle's mean binned CC and its per-map values as CSV (--out).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
INSTRUMENT = {"sdo": "aia", "stereo_a": "euvi_a", "stereo_b": "euvi_b"}


def aligned_header(instrument: str, time: datetime, config: dict):
    """The co-aligned header prepare wrote for this observer and time (304 channel)."""
    import sunpy.map

    from farside_gan.core.conventions import write_geometry
    from farside_gan.prepare.align import output_header
    from farside_gan.synthetic.archive import _fits_header, plan_observation
    size = config["synthetic"]["euvi_size" if instrument.startswith("euvi") else "size"]
    plan = plan_observation(instrument, 304, time, size=size, seed=config["synthetic"]["seed"])
    header = _fits_header(plan.header, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smap = sunpy.map.Map(np.zeros((size, size), np.float32), header)
    out = output_header(smap, config["image"]["size"], config["image"]["rsun_px"], header)
    write_geometry(out, config["image"]["rsun_px"], config["image"]["mask_radius"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", type=Path, help="a benchmark run's results/evaluation/metrics.csv")
    p.add_argument("--config", type=Path, default=REPO / "config/benchmark.yaml")
    p.add_argument("--out", type=Path, default=None, help="per-map oracle CCs (CSV)")
    args = p.parse_args()

    sys.path.insert(0, str(REPO))
    from farside_gan.core import metrics
    from farside_gan.core.geometry import disk_mask
    from farside_gan.core.instruments import parse_time_key
    from farside_gan.evaluation.oracle import hale_rule_oracle
    from farside_gan.synthetic import SyntheticSun
    from farside_gan.synthetic.truth import truth_map

    config = yaml.safe_load(args.config.read_text())
    sun = SyntheticSun(seed=config["synthetic"]["seed"])
    with open(args.metrics, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["truth"] == "synthetic"]
    out, by_label = [], {}
    for k, row in enumerate(sorted(rows, key=lambda r: r["time"])):
        time = parse_time_key(row["time"])
        header = aligned_header(INSTRUMENT[row["observer"]], time, config)
        area = metrics.pixel_area_cm2(header)
        truth = np.nan_to_num(truth_map(sun, header)[0])  # NaN off the disk
        disk = disk_mask(truth.shape[0], config["image"]["rsun_px"], config["image"]["mask_radius"])
        flux = metrics.unsigned_flux(truth, disk, area)
        if not math.isclose(flux, float(row["unsigned_flux_real"]), rel_tol=1e-3):
            raise SystemExit(f"{row['observer']} {row['time']}: rebuilt truth has unsigned flux "
                             f"{flux:.4g}, the run's {float(row['unsigned_flux_real']):.4g}: not "
                             "the same truth (another configuration?)")
        factor = int(row["bin"])
        oracle = hale_rule_oracle(truth, time, smooth_px=float(factor))
        cc = metrics.pearson_cc(metrics.bin_image(oracle, factor), metrics.bin_image(truth, factor),
                                metrics.bin_mask(disk, factor))
        label = f"{row['side']}/{row['observer']}/synthetic"
        by_label.setdefault(label, []).append(cc)
        out.append({"side": row["side"], "observer": row["observer"], "time": row["time"],
                    "oracle_cc_binned": cc, "model_cc_binned": float(row["cc_binned"])})
        print(f"{k + 1}/{len(rows)} {label} {row['time']}: oracle {cc:.3f}, model "
              f"{float(row['cc_binned']):.3f}", flush=True)
    for label, ccs in by_label.items():
        model = [r["model_cc_binned"] for r in out if f"{r['side']}/{r['observer']}/synthetic" == label]
        print(f"{label}: {len(ccs)} maps, Hale-rule oracle mean binned CC {np.mean(ccs):.3f} "
              f"(median {np.median(ccs):.3f}); model {np.mean(model):.3f} (median {np.median(model):.3f})")
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(out[0]))
            writer.writeheader()
            writer.writerows(out)


if __name__ == "__main__":
    main()
