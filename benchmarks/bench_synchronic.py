"""Synchronic maps and the generated maps' uncertainty against the synthetic Sun's truth.

Reads a finished workflow run directory of a synthetic archive (config/demo.yaml,
config/benchmark.yaml; with synchronic.ensemble_members >= 2 for the uncertainty):

* every synchronic map (results/synchronic/<period>/<time>.fits) against the true radial field
  of the archive's Sun (data/archive/synthetic_sun.json) on the map's own Carrington grid, each
  pixel the Sun's field averaged over it: Pearson CC over the covered pixels (full and binned
  BIN x BIN pixels), over the pixels HMI leads and those STEREO leads; unsigned and net flux
  (integrated over the covered area) against the truth's; the fraction of the grid covered;
* the uncertainty: the fraction of pixels whose true error is within 1 sigma (0.683 is
  calibrated; below: overconfident) and the factor that would calibrate it, for the farside
  maps on their own grid (against results/truth/<sc>/...), the near-side maps (against HMI,
  what real data would allow, and against the truth), and the synchronic map where STEREO
  leads; then the near side's factor (fitted against HMI) applied to the far side, which says
  whether calibrating on the near side would carry over;
* with --weight-powers, the synchronic maps made again from their inputs (the PROVENANCE
  table) with other merge weights, to compare.

    python benchmarks/bench_synchronic.py runs/demo-ensemble [--json out.json] [--bin 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farside_gan.core.metrics import bin_image, pearson_cc  # noqa: E402
from farside_gan.products.synchronic import (SOURCE_CODES, SynchronicSettings, parse_time_key,
                                             pixel_areas, synchronic_map)  # noqa: E402
from farside_gan.products.uncertainty import (ONE_SIGMA, UNCERTAINTY_EXTNAME, calibration_factor,
                                              read_uncertainty, within_sigma_fraction)  # noqa: E402
from farside_gan.products.uncertainty_calibration import ensemble_errors  # noqa: E402
from farside_gan.synthetic.archive import read_sun  # noqa: E402
from farside_gan.synthetic.truth import carrington_truth  # noqa: E402


def binned_cc(a, b, covered, factor):
    """CC of factor x factor block means over blocks wholly covered."""
    a = np.where(covered, a, np.nan)
    ba, bb = bin_image(a, factor), bin_image(np.where(covered, b, np.nan), factor)
    ok = np.isfinite(ba) & np.isfinite(bb)
    return pearson_cc(ba, bb, ok)


def score_synchronic(field, header, truth, source, sigma, bin_factor):
    covered = np.isfinite(field)
    area = pixel_areas(header)
    hmi = covered & (source == SOURCE_CODES["hmi"])
    stereo = covered & np.isin(source, [SOURCE_CODES["stereo_a"], SOURCE_CODES["stereo_b"]])
    row = {
        "covered": float(covered.mean()), "n_gap": int(header["NGAP"]),
        "cc": pearson_cc(field, truth, covered),
        "cc_binned": binned_cc(field, truth, covered, bin_factor),
        "cc_hmi_led": pearson_cc(field, truth, hmi),
        "cc_stereo_led": pearson_cc(field, truth, stereo),
        "unsigned_flux_ratio": float(np.sum(np.abs(field[covered]) * area[covered])
                                     / np.sum(np.abs(truth[covered]) * area[covered])),
        "net_flux_over_unsigned": float(np.sum(field[covered] * area[covered])
                                        / np.sum(np.abs(field[covered]) * area[covered])),
        "true_net_flux_over_unsigned": float(np.sum(truth[covered] * area[covered])
                                             / np.sum(np.abs(truth[covered]) * area[covered])),
    }
    if sigma is not None:
        error = field - truth
        row.update(within_1sigma_stereo_led=within_sigma_fraction(error, sigma, mask=stereo),
                   calibration_factor_stereo_led=calibration_factor(error, sigma, mask=stereo),
                   mean_sigma_stereo_led=float(np.nanmean(sigma[stereo])),
                   rms_error_stereo_led=float(np.sqrt(np.nanmean(error[stereo] ** 2))))
    return row


def synchronic_rows(run: Path, sun, bin_factor: int, weight_powers) -> list[dict]:
    rows = []
    for path in sorted(run.glob("results/synchronic/*/*.fits")):
        t = parse_time_key(path.stem)
        with fits.open(path) as hdul:
            header = hdul[0].header
            field = hdul[0].data.astype(float)
            source = hdul["SOURCE"].data
            sigma = hdul[UNCERTAINTY_EXTNAME].data.astype(float) \
                if UNCERTAINTY_EXTNAME in hdul else None
            files = {r: (run / f if f else None) for r, f in zip(
                hdul["PROVENANCE"].data["ROLE"], hdul["PROVENANCE"].data["FILE"])}
        calibration = files.pop("calibration", None)
        inputs = files
        truth = carrington_truth(sun, header, t).astype(float)
        made = f"as made (k={header['WPOWER']:g}, sigma x {header.get('UNCCALF', 1):.2f})"
        rows.append({"map": path.name, "variant": made,
                     **score_synchronic(field, header, truth, source, sigma, bin_factor)})
        settings = SynchronicSettings(projection=header["SYNPROJ"], radial=header["RADIAL"],
                                      pixels=(header["NAXIS1"], header["NAXIS2"]),
                                      mu_min=header["MUMIN"], algorithm=header["REPALG"])
        for power in weight_powers:
            start = time.perf_counter()
            arrays, h, _ = synchronic_map(
                t, inputs, SynchronicSettings(**{**settings.__dict__, "weight_power": power}),
                calibration)
            seconds = time.perf_counter() - start
            rows.append({"map": path.name, "variant": f"k={power:g}", "seconds": seconds,
                         **score_synchronic(arrays["field"].astype(float), h, truth,
                                            arrays["source"], arrays["sigma"], bin_factor)})
    return rows


def grid_of(run: Path) -> SynchronicSettings | None:
    """The synchronic maps' grid (from the first map's header), None without maps."""
    first = next(iter(sorted(run.glob("results/synchronic/*/*.fits"))), None)
    if first is None:
        return None
    h = fits.getheader(first)
    return SynchronicSettings(projection=h["SYNPROJ"], radial=h["RADIAL"],
                              pixels=(h["NAXIS1"], h["NAXIS2"]), mu_min=h["MUMIN"],
                              algorithm=h["REPALG"], weight_power=h["WPOWER"])


def uncertainty_rows(run: Path, grid: SynchronicSettings | None = None) -> list[dict]:
    """Calibration of the generated maps: farside against the truth, near side against HMI
    and against the truth; on the maps' own pixels, or on the synchronic ``grid``."""
    groups = {}
    for path in sorted(run.glob("results/farside/*/*/*.fits")):
        sc, period = path.parts[-3], path.parts[-2]
        groups.setdefault(f"farside/{sc}/synthetic", []).append(
            (path, run / "results/truth" / sc / period / path.name))
    for path in sorted(run.glob("results/nearside/*/*.fits")):
        period = path.parts[-2]
        groups.setdefault("nearside/sdo/hmi", []).append(
            (path, run / "data/prepared/hmi" / period / "aligned/magnetogram" / path.name))
        groups.setdefault("nearside/sdo/synthetic", []).append(
            (path, run / "results/truth/sdo" / period / path.name))
    rows = []
    for label, pairs in groups.items():
        if read_uncertainty(pairs[0][0]) is None:
            continue  # a run without the ensemble
        error, sigma, used = ensemble_errors(pairs, grid)
        if not used:
            continue
        rows.append({"comparison": label, "on": "grid" if grid else "pixels",
                     "maps": len(used), "pixels": int(error.size),
                     "within_1sigma": within_sigma_fraction(error, sigma),
                     "calibration_factor": calibration_factor(error, sigma),
                     "mean_sigma": float(np.mean(sigma)),
                     "rms_error": float(np.sqrt(np.mean(error ** 2))), "_data": (error, sigma)})
    near = next((r for r in rows if r["comparison"] == "nearside/sdo/hmi"), None)
    if near is not None:
        for r in rows:
            if r["comparison"].startswith("farside/"):
                error, sigma = r["_data"]
                r["within_1sigma_after_nearside_factor"] = within_sigma_fraction(
                    error, near["calibration_factor"] * sigma)
    for r in rows:
        del r["_data"]
    return rows


def table(rows, columns) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished workflow run (workdir)")
    parser.add_argument("--bin", type=int, default=3, help="binning of the binned CC")
    parser.add_argument("--weight-powers", type=float, nargs="*", default=[],
                        help="also merge the inputs again with these weight powers")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    sun = read_sun(args.run_dir / "data/archive")
    synchronic = synchronic_rows(args.run_dir, sun, args.bin, args.weight_powers)
    grid = grid_of(args.run_dir)
    uncertainty = uncertainty_rows(args.run_dir) + (uncertainty_rows(args.run_dir, grid)
                                                   if grid else [])
    print(f"synthetic Sun seed {sun.seed}; one sigma of a normal distribution: {ONE_SIGMA:.3f}\n")
    print(table(synchronic, ["map", "variant", "covered", "cc", "cc_binned", "cc_hmi_led",
                             "cc_stereo_led", "unsigned_flux_ratio", "net_flux_over_unsigned",
                             "true_net_flux_over_unsigned", "within_1sigma_stereo_led",
                             "calibration_factor_stereo_led"]))
    print()
    print(table(uncertainty, ["comparison", "on", "maps", "pixels", "within_1sigma",
                              "calibration_factor", "mean_sigma", "rms_error",
                              "within_1sigma_after_nearside_factor"]))
    if args.json:
        args.json.write_text(json.dumps({"synchronic": synchronic, "uncertainty": uncertainty},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
