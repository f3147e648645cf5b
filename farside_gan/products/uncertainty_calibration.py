"""Calibrating the ensemble's uncertainty against a truth: the errors of maps that carry an
``UNCERTAINTY`` extension against truth maps, on their own pixels or on the synchronic grid,
and the factor that makes ``ONE_SIGMA`` of them fall within sigma (``calibrate-uncertainty``).

Apart from :mod:`farside_gan.products.uncertainty` because it reprojects through
:mod:`farside_gan.products.synchronic`, which itself reads the uncertainty extension and the
calibration file (``uncertainty.read_calibration``): one direction of import only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from farside_gan.core.instruments import TRAINING_TARGET
from farside_gan.products.uncertainty import (ONE_SIGMA, UNCERTAINTY_EXTNAME, calibration_factor,
                                              grid_record, read_uncertainty, within_sigma_fraction)


def ensemble_errors(pairs, grid=None) -> tuple[np.ndarray, np.ndarray, list[tuple[Path, Path]]]:
    """(error, sigma, pairs used) over the (map with an UNCERTAINTY extension, truth map of
    the same grid in G) pairs: on the maps' on-disk pixels, or, with ``grid`` (synchronic
    settings), on the Carrington grid where both are seen, each reprojected and made radial as
    the synchronic map makes them -- so that a factor fitted there applies to the synchronic
    map's uncertainty, whose reprojection averages pixels (and their errors) together. Pairs
    whose truth is missing are left out (e.g. an HMI frame dropped at that time); a map
    without the extension is an error."""
    from farside_gan.core.errors import InputDataError
    from farside_gan.core.fitsio import read_fits
    from farside_gan.products.synchronic import disk_pixels, source_on_grid
    errors, sigmas, used = [], [], []
    for prediction, truth in pairs:
        prediction, truth = Path(prediction), Path(truth)
        if not truth.exists():
            continue
        sigma = read_uncertainty(prediction)
        if sigma is None:
            raise InputDataError(prediction, f"no {UNCERTAINTY_EXTNAME} extension (predict "
                                 "with an ensemble)", reason="missing_keyword")
        if grid is not None:
            generated = source_on_grid("generated", prediction, grid)
            real = source_on_grid(TRAINING_TARGET, truth, grid)  # observed: no sigma of its own
            seen = np.isfinite(generated.value) & np.isfinite(real.value)
            errors.append((generated.value.astype(float) - real.value)[seen])
            sigmas.append(generated.sigma.astype(float)[seen])
            used.append((prediction, truth))
            continue
        data, header = read_fits(prediction)
        real, _ = read_fits(truth)
        if real.shape != data.shape:
            raise InputDataError(truth, f"shape {real.shape} is not the prediction's "
                                 f"{data.shape}", reason="bad_shape")
        disk = disk_pixels(header, data.shape, prediction)
        errors.append((data.astype(float) - real.astype(float))[disk])
        sigmas.append(sigma.astype(float)[disk])
        used.append((prediction, truth))
    if not used:
        return np.zeros(0), np.zeros(0), []
    return np.concatenate(errors), np.concatenate(sigmas), used


def fit_calibration(pairs, out: str | os.PathLike | None = None, grid=None) -> dict:
    """The factor that makes ``ONE_SIGMA`` of the errors fall within the ensemble's sigma
    times it, over (map, truth) pairs (``ensemble_errors``; on the Carrington ``grid`` when
    given, else on the maps' own pixels): near-side maps of the evaluation months against HMI.
    Written as JSON to ``out`` when given; ``grid`` is recorded (``read_calibration`` checks
    it)."""
    import json

    from farside_gan import __version__
    from farside_gan.core.errors import NoDataError
    from farside_gan.core.fitsio import atomic_output, sha256_of
    error, sigma, used = ensemble_errors(pairs, grid)
    if not used:
        raise NoDataError("uncertainty calibration", "no map with a truth to calibrate against")
    result = {"factor": calibration_factor(error, sigma), "level": ONE_SIGMA,
              "within_1sigma_raw": within_sigma_fraction(error, sigma),
              "maps": len(used), "pixels": int(error.size),
              "mean_sigma": float(np.mean(sigma)),
              "rms_error": float(np.sqrt(np.mean(error ** 2))),
              "grid": grid_record(grid),
              "pairs": [{"map": str(p), "map_sha256": sha256_of(p), "truth": str(t)}
                        for p, t in used],
              "software_version": __version__}
    if not math.isfinite(result["factor"]):
        raise NoDataError("uncertainty calibration", f"sigma is 0 where the maps err "
                          f"({len(used)} maps): no factor calibrates it")
    if out is not None:
        with atomic_output(out, suffix=".json") as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result
