"""Level 1 -> level 1.5 corrections that are not geometric; geometry is left to :mod:`align`.

AIA: aiapy's pointing update (a header change: CRPIX, CDELT, CROTA2 from the master pointing
table), degradation correction (a scale factor from the correction table) and exposure
normalization to DN/s. Registration (north up, common plate scale) is the one resampling that
:mod:`farside_gan.prepare.align` does, straight to the output grid.

HMI: the 720 s magnetogram is NaN off the disk (and at a few bad pixels); NaNs become 0 G so that
resampling does not spread them (the off-disk area is masked by align anyway). The 180 degree
rotation (CROTA2 ~ 180) is honoured by align from the header.

EUVI (level 0.5): bias subtraction (BIASMEAN when not already removed on board, OFFSETCR = 0),
division by the IP summing factor and exposure normalization to DN/s; north up is done by
align from the header's PC/CROTA. What IDL's ``secchi_prep`` does beyond this and we do not:
flat field and vignetting correction (calibration images shipped with SolarSoft, not on PyPI),
the photometric calibration factor DN -> photons (a per-channel constant, which the on-disk
median normalization divides out anyway), the CCD/shutter corrections of ``scc_img_trim`` and
missing-block filling. The model is trained on median-normalized AIA data and the EUVI frames
get the same normalization, so constant factors do not matter; vignetting (a smooth radial
dimming of up to ~10 % at the limb) does, and is a known limitation.

The AIA calibration tables are files (``calibration-tables`` writes them once per run), so
calibration runs offline.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import QTable
from astropy.time import Time

from farside_gan.core.errors import FarsideError, InputDataError
from farside_gan.core.fitsio import read_fits, write_fits
from farside_gan.core.header_checks import check_calibrate_input, check_exposure, number
from farside_gan.core.instruments import INSTRUMENT_LIST, INSTRUMENTS, obs_time, reference_time

log = logging.getLogger(__name__)

POINTING_TABLE = "aia_pointing_table.ecsv"
CORRECTION_TABLE = "aia_correction_table.ecsv"
AIA_FULL_SIZE = 4096
#: Every AIA channel: the pointing and degradation tables have entries for each.
AIA_CHANNELS = next(i.all_channels for i in INSTRUMENT_LIST if i.calibration == "aia_prep")


class CalibrationError(FarsideError):
    """Calibration tables missing, unreadable or without an entry for the frame's time."""


# ----------------------------------------------------------------------------- tables

def fetch_calibration_tables(out_dir: str | os.PathLike, source: str = "lmsal",
                             time_range=None) -> tuple[Path, Path]:
    """Fetch the AIA pointing and degradation tables with aiapy and cache them as ECSV files.

    ``source``: 'lmsal' (static copy of the master pointing table) or 'jsoc' (needs
    ``time_range``). The correction table comes from SSW. Network access required.
    """
    from aiapy.calibrate.util import get_correction_table, get_pointing_table

    out_dir = Path(out_dir)
    pointing = get_pointing_table(source, time_range=time_range) if source == "jsoc" \
        else get_pointing_table(source)
    correction = get_correction_table("SSW")
    return _write_tables(out_dir, pointing, correction)


#: Where the demo tables end: ERFA warns of a "dubious year" for UTC dates after its
#: leap-second table's reach (2028 with pyerfa 2.0), which later dates would print in every log.
DEMO_TABLES_END = "2028-01-01T00:00:00"


def write_demo_calibration_tables(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write small tables in aiapy's format for offline use with synthetic data.

    Pointing: one entry spanning 2010-2028 whose values are MISSING (NaN), as JSOC marks
    entries it has no limb fit for; aiapy then keeps the header's own pointing, which for
    synthetic data is the truth. (A nominal pointing would move the synthetic Sun.)
    Degradation: effective area constant over time (factor 1), since synthetic data do not
    degrade. Columns, units and time conventions are those of the real tables.
    """
    pointing = QTable()
    pointing["T_START"] = Time(["2010-03-24T00:00:00"], scale="utc")
    pointing["T_STOP"] = Time([DEMO_TABLES_END], scale="utc")
    for ch in AIA_CHANNELS:
        pointing[f"A_{ch:03d}_X0"] = [np.nan] * u.pix
        pointing[f"A_{ch:03d}_Y0"] = [np.nan] * u.pix
        pointing[f"A_{ch:03d}_IMSCALE"] = [np.nan] * u.arcsec / u.pix
        pointing[f"A_{ch:03d}_INSTROT"] = [np.nan] * u.deg
    rows = []
    for ch in AIA_CHANNELS:
        wave_str = f"{ch}_THIN" if ch not in (1600, 1700, 4500) else str(ch)
        for t_start, t_stop in (("2010-03-24T00:00:00", "2015-01-01T00:00:00"),
                                ("2015-01-01T00:00:00", DEMO_TABLES_END)):
            rows.append(("2024-01-01T00:00:00", 10, wave_str, float(ch), t_start, t_stop,
                         0.0, 0.0, 0.0, 1.0, float(ch)))
    correction = QTable(rows=rows, names=("DATE", "VER_NUM", "WAVE_STR", "WAVELNTH", "T_START",
                                          "T_STOP", "EFFA_P1", "EFFA_P2", "EFFA_P3", "EFF_AREA",
                                          "EFF_WVLN"))
    return _write_tables(Path(out_dir), pointing, correction)


def _write_tables(out_dir: Path, pointing: QTable, correction: QTable) -> tuple[Path, Path]:
    from farside_gan.core.fitsio import atomic_output

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / POINTING_TABLE, out_dir / CORRECTION_TABLE
    for table, path in zip((pointing, correction), paths):
        table = QTable(table)
        for col in ("T_START", "T_STOP", "DATE"):
            if col in table.colnames and isinstance(table[col], Time):
                table[col] = table[col].isot
        with atomic_output(path, suffix=".ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    return paths


@functools.lru_cache(maxsize=4)
def load_calibration_tables(calibration_dir: str | os.PathLike) -> tuple[QTable, QTable]:
    """Read (pointing, correction) tables written by :func:`fetch_calibration_tables`."""
    from aiapy.calibrate.util import get_correction_table

    calibration_dir = Path(calibration_dir)
    pointing_path = calibration_dir / POINTING_TABLE
    correction_path = calibration_dir / CORRECTION_TABLE
    for p in (pointing_path, correction_path):
        if not p.exists():
            raise CalibrationError(f"{p}: AIA calibration table missing; run "
                                   f"`farside-gan calibration-tables {calibration_dir}` first")
    try:
        with warnings.catch_warnings():  # ERFA: "dubious year" for T_STOP in the future
            warnings.simplefilter("ignore")
            pointing = QTable.read(pointing_path, format="ascii.ecsv")
            pointing["T_START"] = Time(pointing["T_START"], scale="utc")
            pointing["T_STOP"] = Time(pointing["T_STOP"], scale="utc")
            correction = get_correction_table(correction_path)
    except (OSError, ValueError, KeyError) as exc:
        raise CalibrationError(f"{calibration_dir}: unreadable AIA calibration table ({exc})") from exc
    return pointing, correction


# ----------------------------------------------------------------------------- AIA

def update_aia_pointing(data: np.ndarray, header: fits.Header, pointing_table: QTable,
                        path=None) -> fits.Header:
    """Header with CRPIX/CDELT/CROTA2 from the master pointing table (aiapy.update_pointing).

    The table's X0/Y0 is where the Sun's centre is, so the reference pixel becomes the Sun's
    centre and CRVAL1/2 become 0: a level-1 header's reference pixel need not be the Sun's
    centre (sunpy's AIA 171 test file has CRVAL = (-4.53", 2.87")), and keeping its CRVAL with
    the table's CRPIX would move the Sun by CRVAL / CDELT pixels (aiapy 0.10 keeps it).

    aiapy accepts only full 4096-px frames; for binned frames (tests, sunpy's sample) the same
    table entry is applied scaled by the binning factor.
    """
    import sunpy.map
    from aiapy.calibrate import update_pointing

    header = header.copy()
    n = data.shape[-1]
    t = Time(reference_time(header, path), scale="utc")
    rows = np.flatnonzero((pointing_table["T_START"] <= t) & (t < pointing_table["T_STOP"]))
    if rows.size == 0:
        raise CalibrationError(f"{path}: no pointing table entry for {t.isot}")
    row = pointing_table[rows[0]]
    w = f"{int(round(float(header['WAVELNTH']))):03d}"
    if all(not np.isfinite(row[f"A_{w}_{k}"].value) for k in ("X0", "Y0", "IMSCALE", "INSTROT")):
        header.add_history("farside-gan calibrate: pointing table entry MISSING; header pointing kept")
        return header
    centre_known = [bool(np.isfinite(row[f"A_{w}_{k}"].value)) for k in ("X0", "Y0")]
    if centre_known[0] != centre_known[1]:
        raise CalibrationError(f"{path}: pointing table entry for {t.isot} gives only one of "
                               f"A_{w}_X0/A_{w}_Y0: the Sun's centre is unknown")
    centre_known = centre_known[0]
    if data.shape == (AIA_FULL_SIZE, AIA_FULL_SIZE):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                new = update_pointing(sunpy.map.Map(data, header), pointing_table=pointing_table)
            except (IndexError, ValueError) as exc:
                raise CalibrationError(f"{path}: pointing update failed ({exc})") from exc
        for key in ("CRPIX1", "CRPIX2", "X0_MP", "Y0_MP", "CDELT1", "CDELT2", "CROTA2"):
            header[key] = float(new.meta[key.lower()])
    else:
        binning = AIA_FULL_SIZE / n
        x0 = row[f"A_{w}_X0"].to_value(u.pix)
        y0 = row[f"A_{w}_Y0"].to_value(u.pix)
        scale = row[f"A_{w}_IMSCALE"].to_value(u.arcsec / u.pix)
        rot = row[f"A_{w}_INSTROT"].to_value(u.deg) + float(header.get("SAT_ROT", 0.0))
        for key, value in (("CRPIX1", (x0 + 0.5) / binning + 0.5), ("CRPIX2", (y0 + 0.5) / binning + 0.5),
                           ("X0_MP", x0), ("Y0_MP", y0), ("CDELT1", scale * binning),
                           ("CDELT2", scale * binning), ("CROTA2", rot)):
            if np.isfinite(value):
                header[key] = float(value)
    if centre_known:
        header["CRVAL1"] = header["CRVAL2"] = 0.0  # CRPIX is now the Sun's centre
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        header.remove(key, ignore_missing=True)
    header.add_history("farside-gan calibrate: AIA pointing updated from the master pointing table")
    return header


def aia_degradation_factor(header: fits.Header, correction_table: QTable, path=None) -> float:
    from aiapy.calibrate import degradation

    t = Time(obs_time(header, path), scale="utc")
    try:
        factor = degradation(float(header["WAVELNTH"]) * u.angstrom, t, correction_table=correction_table)
    except ValueError as exc:
        raise CalibrationError(f"{path}: degradation correction failed ({exc})") from exc
    return float(np.ravel(factor.to_value(u.dimensionless_unscaled))[0])


# ----------------------------------------------------------------------------- frames

def _aia_prep(out, header, instrument, path, tables):
    """AIA: pointing from the master pointing table, degradation and exposure to DN/s."""
    pointing, correction = tables
    header = update_aia_pointing(out, header, pointing, path)
    factor = aia_degradation_factor(header, correction, path)
    exptime = check_exposure(header, instrument, path)
    out *= np.float32(1.0 / (factor * exptime))
    header["DEGRADAT"] = (factor, "degradation factor divided out (aiapy)")
    header.add_history(f"farside-gan calibrate: divided by degradation {factor:.5f} and "
                       f"EXPTIME {exptime:.4f} s")
    header["EXPTIME"] = 1.0
    header["BUNIT"] = "DN/s"
    header["PIXLUNIT"] = "DN/s"
    return out, header


def _hmi_los(out, header, instrument, path, tables):
    """HMI LOS magnetogram: NaNs (off the disk, a few bad pixels) to 0 G for resampling."""
    bad = ~np.isfinite(out)
    n_bad = int(np.count_nonzero(bad))
    out[bad] = 0.0
    header.add_history(f"farside-gan calibrate: {n_bad} NaN/inf pixels set to 0")
    header.setdefault("BUNIT", "Gauss")
    return out, header


def _secchi_prep(out, header, instrument, path, tables):
    """SECCHI/EUVI level 0.5: bias, IP summing and exposure to DN/s (see the module doc)."""
    bias = 0.0
    if (number(header, "OFFSETCR", path) if header.get("OFFSETCR") else 0.0) == 0 \
            and header.get("BIASMEAN"):
        bias = number(header, "BIASMEAN", path)
        out -= np.float32(bias)
        header["OFFSETCR"] = (bias, "bias subtracted by farside-gan")
    summing = number(header, "IPSUM", path) if header.get("IPSUM") else 1.0
    if summing not in (1.0, 2.0, 3.0, 4.0):
        raise InputDataError(path, f"IPSUM = {summing:g} is not an on-board summing factor",
                             reason="out_of_range")
    exptime = check_exposure(header, instrument, path)
    out *= np.float32(1.0 / (exptime * 2 ** (2 * (summing - 1))))
    header.add_history(f"farside-gan calibrate: bias {bias:.2f} DN removed, divided by "
                       f"EXPTIME {exptime:.4f} s and IP summing {summing:g}")
    header["EXPTIME"] = 1.0
    header["BUNIT"] = "DN/s"
    return out, header


#: The calibration procedure of each instrument (``layout.Instrument.calibration``).
CALIBRATIONS = {"aia_prep": _aia_prep, "hmi_los": _hmi_los, "secchi_prep": _secchi_prep}


def calibrate_frame(data: np.ndarray, header: fits.Header, calibration_dir=None, path=None,
                    tables: tuple[QTable, QTable] | None = None) -> tuple[np.ndarray, fits.Header]:
    """Calibrate one raw frame; returns float32 data on the same grid and the updated header.

    The header must give what calibration reads (``validation.REQUIRED["calibrate"]``: AIA its
    WAVELNTH, DATE-OBS and EXPTIME; EUVI its EXPTIME), with plausible values. Instruments whose
    procedure reads tables (AIA) need ``tables`` or ``calibration_dir``.
    """
    instrument = check_calibrate_input(data, header, path)
    spec = INSTRUMENTS[instrument]
    header = header.copy()
    out = np.asarray(data, dtype=np.float32)
    if out is data:
        out = out.copy()
    for key in ("BLANK", "BZERO", "BSCALE", "CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True)
    if spec.calibration_tables and tables is None:
        if calibration_dir is None:
            raise CalibrationError(f"{path}: {spec.label} calibration needs the pointing and "
                                   "degradation tables (--calibration-dir)")
        tables = load_calibration_tables(str(calibration_dir))
    out, header = CALIBRATIONS[spec.calibration](out, header, instrument, path, tables)
    header.add_history("farside-gan calibrate: non-geometric level 1.5 corrections; "
                       "registration follows in align")
    return out, header


def calibrate_file(in_path, out_path, calibration_dir=None) -> Path:
    data, header = read_fits(in_path)
    out, header = calibrate_frame(data, header, calibration_dir=calibration_dir, path=in_path)
    return write_fits(out_path, out, header)
