"""Per-pixel uncertainty of generated magnetograms: the spread of an ensemble of generators.

The ensemble is, by default, the training run's own snapshots (Huang et al. 2017, "Snapshot
ensembles: train 1, get M for free"): the final generator (``generator.pt``) and the generators
of the last checkpoints training kept (``checkpoints/epoch_NNNN.pt``, every
``training.keep_every_epochs``), so it costs no extra training, only one more inference per
member. Generators of separately trained runs (other seeds) are members too (``--member``).

The uncertainty of a map is the members' sample standard deviation (ddof 1) per pixel, in
Gauss, of the de-normalized, clipped and masked fields, written as the image extension
``UNCERTAINTY`` of the map (same WCS, ``BUNIT = 'Gauss'``), with the members listed in the
table extension ``ENSEMBLE`` (file, sha256, epoch, step). The map itself stays the final
generator's. A snapshot ensemble of one run's late epochs underestimates the error (the members
are correlated); ``within_sigma_fraction`` measures that against a truth (about 68 % within one
sigma is calibrated) and ``calibration_factor`` is the factor that would calibrate it.

No torch here (the checkpoints are read through ``farside_gan.model.checkpoint`` only when members are
picked).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from astropy.io import fits

UNCERTAINTY_EXTNAME = "UNCERTAINTY"
ENSEMBLE_EXTNAME = "ENSEMBLE"
#: Fraction of a normal distribution within one standard deviation.
ONE_SIGMA = math.erf(1 / math.sqrt(2))
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


def snapshot_members(generator: str | os.PathLike, members: int) -> list[Path]:
    """The final generator and the ``members - 1`` latest kept checkpoints of its run before it.

    ``generator`` is a run's ``generator.pt``; its snapshots are ``checkpoints/epoch_NNNN.pt``
    next to it. A snapshot of the generator's own epoch is the generator itself and is skipped.
    Too few snapshots is an error naming the directory (``training.keep_every_epochs`` sets
    how many a run keeps).
    """
    from farside_gan.core.errors import InputDataError
    from farside_gan.model.checkpoint import load_checkpoint

    generator = Path(generator)
    if members < 2:
        raise ValueError(f"an ensemble needs at least 2 members, not {members}")
    final_epoch = int(load_checkpoint(generator).get("epoch", -1))
    directory = generator.parent / "checkpoints"
    snapshots = sorted((int(m.group(1)), p) for p in directory.glob("epoch_*.pt")
                       if (m := _EPOCH_FILE.match(p.name)) and int(m.group(1)) < final_epoch)
    if len(snapshots) < members - 1:
        raise InputDataError(directory, f"{len(snapshots)} kept checkpoints before epoch "
                             f"{final_epoch}, but an ensemble of {members} needs {members - 1} "
                             "(training.keep_every_epochs sets how many training keeps)",
                             reason="missing_file")
    return [generator] + [p for _, p in reversed(snapshots[-(members - 1):])]


def ensemble_std(fields: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof 1) over axis 0 of ``(members, ...)`` fields, float32.

    Zero where all members agree, NaN where any member is NaN (no pixel is called certain
    because one member left it out)."""
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim < 1 or fields.shape[0] < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got shape {fields.shape}")
    return np.std(fields, axis=0, ddof=1).astype(np.float32)


def _usable(error, sigma, mask) -> tuple[np.ndarray, np.ndarray]:
    """|error| and sigma on the pixels where both are finite (and in ``mask``)."""
    error, sigma = np.abs(np.asarray(error, float)), np.asarray(sigma, float)
    use = np.isfinite(error) & np.isfinite(sigma)
    if mask is not None:
        use &= mask
    return error[use], sigma[use]


def within_sigma_fraction(error: np.ndarray, sigma: np.ndarray, k: float = 1.0,
                          mask: np.ndarray | None = None) -> float:
    """Fraction of pixels (finite, in ``mask``) whose |error| is at most ``k`` sigma.

    For a calibrated Gaussian uncertainty this is 0.683 at k = 1 (``ONE_SIGMA``)."""
    error, sigma = _usable(error, sigma, mask)
    if not error.size:
        return float("nan")
    return float(np.mean(error <= k * sigma))


def calibration_factor(error: np.ndarray, sigma: np.ndarray, mask: np.ndarray | None = None,
                       level: float = ONE_SIGMA) -> float:
    """The factor c such that a fraction ``level`` of pixels has |error| <= c sigma
    (c > 1: the ensemble is overconfident). Pixels with sigma = 0 count as infinitely far."""
    error, sigma = _usable(error, sigma, mask)
    if not error.size:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sigma > 0, error / sigma, np.where(error > 0, np.inf, 0.0))
    return float(np.quantile(ratio, level))


def uncertainty_hdu(sigma: np.ndarray, map_header: fits.Header, members: int) -> fits.ImageHDU:
    """The ``UNCERTAINTY`` extension: ``sigma`` (G) with the map's WCS and observer, so it is
    itself a map sunpy can place on the Sun."""
    header = fits.Header([c for c in map_header.cards
                          if c.keyword not in ("HISTORY", "COMMENT", "SIMPLE", "EXTEND")])
    header["BUNIT"] = ("Gauss", "1-sigma uncertainty of the field")
    header["CONTENT"] = "uncertainty: ensemble standard deviation"
    header["UNCMETH"] = ("ensemble std", "sample std (ddof 1) over the generators")
    header["UNCN"] = (int(members), "ensemble members")
    return fits.ImageHDU(np.asarray(sigma, dtype=np.float32), header=header,
                         name=UNCERTAINTY_EXTNAME)


def ensemble_hdu(members: list[dict]) -> fits.BinTableHDU:
    """The ``ENSEMBLE`` table: one row per member (``file``, ``sha256``, ``epoch``, ``step``)."""
    columns = [
        fits.Column(name="FILE", format="200A", array=[str(m["file"])[-200:] for m in members]),
        fits.Column(name="SHA256", format="64A", array=[m["sha256"] for m in members]),
        fits.Column(name="EPOCH", format="J", array=[int(m.get("epoch", -1)) for m in members]),
        fits.Column(name="STEP", format="K", array=[int(m.get("step", -1)) for m in members]),
    ]
    return fits.BinTableHDU.from_columns(columns, name=ENSEMBLE_EXTNAME)


def read_uncertainty(path: str | os.PathLike) -> np.ndarray | None:
    """The ``UNCERTAINTY`` extension of a map (float32, G), or None when it has none."""
    from farside_gan.core.fitsio import open_fits
    with open_fits(path) as hdul:
        if UNCERTAINTY_EXTNAME not in hdul:
            return None
        return np.array(hdul[UNCERTAINTY_EXTNAME].data, dtype=np.float32)


def grid_record(grid) -> dict | None:
    """What of the synchronic settings the calibration depends on (not the merge weights)."""
    if grid is None:
        return None
    return {"projection": grid.projection, "pixels": [int(p) for p in grid.pixels],
            "radial": bool(grid.radial), "mu_min": float(grid.mu_min),
            "algorithm": grid.algorithm}


def read_calibration(path: str | os.PathLike, grid=None) -> float:
    """The factor of a calibration file (``uncertainty_calibration.fit_calibration``); with ``grid``, the file must
    have been fitted on that grid (a factor of another resolution does not carry over)."""
    import json

    from farside_gan.core.errors import InputDataError
    try:
        record = json.loads(Path(path).read_text())
        factor, fitted_on = float(record["factor"]), record["grid"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputDataError(path, f"not an uncertainty calibration ({exc})",
                             reason="corrupt_index") from exc
    if not (math.isfinite(factor) and factor > 0):
        raise InputDataError(path, f"calibration factor {factor} is not a positive number",
                             reason="out_of_range")
    if grid is not None and fitted_on != grid_record(grid):
        raise InputDataError(path, f"fitted on the grid {fitted_on}, not this map's "
                             f"{grid_record(grid)}", reason="inconsistent_header")
    return factor
