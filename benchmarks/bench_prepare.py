"""Seconds per full-size frame for calibrate + align, per instrument (one core).

    OMP_NUM_THREADS=1 python benchmarks/bench_prepare.py [--repeat 3] [--size 1024]

Frames: full-size synthetic observations from ``farside_gan.synthetic`` (AIA 4096, HMI 4096 with
CROTA2 ~ 180, EUVI 2048 with its roll) when that package provides ``write_observation``;
otherwise a limb-darkened disk with realistic headers built here. Reported: the in-memory
calibrate + align time (the stage's work) and the file-to-file time (read raw FITS, calibrate,
align, write), best of ``--repeat``. Also times ``sunpy.map.Map.rotate`` at 4096 px for
comparison with ``--rotate``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from farside_gan.core.fitsio import read_fits, write_fits  # noqa: E402
from farside_gan.prepare.align import align_frame  # noqa: E402
from farside_gan.prepare.calibrate import (calibrate_frame, load_calibration_tables,
                                           write_demo_calibration_tables)  # noqa: E402

FRAMES = {"aia": (4096, 171, 0.6, 0.05), "hmi": (4096, "magnetogram", 0.504, 179.93),
          "euvi_a": (2048, 195, 1.59, 3.85)}
TIME = datetime(2012, 3, 4, 12, 0, 0)


def fallback_frame(instrument: str) -> tuple[np.ndarray, fits.Header]:
    """A disk with limb darkening and noise, the instrument's keywords, its rotation."""
    n, channel, cdelt, crota = FRAMES[instrument]
    dsun, rsun_ref = 1.4848e11, 6.957e8
    rsun_arcsec = np.degrees(np.arcsin(rsun_ref / dsun)) * 3600
    h = fits.Header()
    h["DATE-OBS"] = TIME.isoformat() + ".34"
    h["CTYPE1"], h["CTYPE2"], h["CUNIT1"], h["CUNIT2"] = "HPLN-TAN", "HPLT-TAN", "arcsec", "arcsec"
    h["CDELT1"] = h["CDELT2"] = cdelt
    h["CRPIX1"], h["CRPIX2"] = n / 2 + 3.2, n / 2 - 1.7
    h["CRVAL1"] = h["CRVAL2"] = 0.0
    h["DSUN_OBS"], h["HGLN_OBS"], h["HGLT_OBS"], h["RSUN_REF"], h["RSUN_OBS"] = dsun, 0.0, -7.2, rsun_ref, rsun_arcsec
    h["EXPTIME"], h["QUALITY"] = 2.9, 0
    if instrument == "aia":
        h.update(TELESCOP="SDO/AIA", INSTRUME="AIA_3", WAVELNTH=171, WAVEUNIT="angstrom",
                 CROTA2=crota, SAT_ROT=0.0, T_OBS=h["DATE-OBS"] + "Z")
    elif instrument == "hmi":
        h.update(TELESCOP="SDO/HMI", INSTRUME="HMI_SIDE1", CONTENT="MAGNETOGRAM", BUNIT="Gauss", CROTA2=crota)
    else:
        c, s = np.cos(np.radians(crota)), np.sin(np.radians(crota))
        h.update(TELESCOP="STEREO", INSTRUME="SECCHI", DETECTOR="EUVI", OBSRVTRY="STEREO_A",
                 WAVELNTH=195, RSUN=rsun_arcsec, PC1_1=c, PC1_2=-s, PC2_1=s, PC2_2=c,
                 BIASMEAN=700.0, OFFSETCR=0.0, IPSUM=1.0)
    y, x = np.indices((n, n), dtype=np.float32)
    r = np.hypot(x - h["CRPIX1"] + 1, y - h["CRPIX2"] + 1) * (cdelt / rsun_arcsec)
    mu = np.sqrt(np.clip(1 - r**2, 0, 1))
    rng = np.random.default_rng(0)
    data = (1000 * (0.4 + 0.6 * mu) * (r <= 1) + rng.normal(0, 5, (n, n))).astype(np.float32)
    if instrument == "hmi":
        data = (rng.normal(0, 50, (n, n)) * (r <= 1)).astype(np.float32)
        data[r > 1] = np.nan
    return data, h


def frame(instrument: str, workdir: Path) -> Path:
    path = workdir / f"{instrument}.fits"
    try:
        from farside_gan.synthetic import SyntheticSun, write_observation
        n, channel, *_ = FRAMES[instrument]
        write_observation(path, SyntheticSun(0), instrument, channel, TIME, size=n, seed=0)
        source = "synthetic"
    except (ImportError, TypeError, AttributeError) as exc:
        data, header = fallback_frame(instrument)
        write_fits(path, data, header)
        source = f"fallback ({type(exc).__name__})"
    print(f"{instrument}: frame from {source}", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rsun-px", type=float, default=450.0)
    parser.add_argument("--rotate", action="store_true", help="also time sunpy Map.rotate at 4096 px")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tables = load_calibration_tables(str(write_demo_calibration_tables(workdir / "cal")[0].parent))
        print(f"{'instrument':10s} {'pixels':>6s} {'calibrate+align [s]':>20s} {'file->file [s]':>15s}")
        for instrument in FRAMES:
            path = frame(instrument, workdir)
            data, header = read_fits(path)
            best_mem, best_file = np.inf, np.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                cal, hcal = calibrate_frame(data, header, tables=tables)
                align_frame(cal, hcal, args.size, args.rsun_px)
                best_mem = min(best_mem, time.perf_counter() - t0)
                t0 = time.perf_counter()
                d, h = read_fits(path)
                cal, hcal = calibrate_frame(d, h, tables=tables)
                out, hout = align_frame(cal, hcal, args.size, args.rsun_px)
                write_fits(workdir / "out.fits", out, hout)
                best_file = min(best_file, time.perf_counter() - t0)
            print(f"{instrument:10s} {data.shape[0]:6d} {best_mem:20.3f} {best_file:15.3f}", flush=True)
        if args.rotate:
            import sunpy.map
            data, header = read_fits(workdir / "aia.fits")
            t0 = time.perf_counter()
            sunpy.map.Map(data, header).rotate(order=3)
            print(f"sunpy Map.rotate (4096 px, order 3): {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
