"""The truth a generated magnetogram is scored against: the synthetic Sun's own field.

The synthetic Sun knows its field everywhere, so for every map the pipeline generates (near side
from an AIA stack, far side from an EUVI stack) the noiseless line-of-sight field exists on the
map's own pixel grid, seen by the map's observer at the map's time. ``truth_map`` computes it
from the input stack's header alone (so it does not depend on the model) and writes it as the
prediction would be written: the same 2-D celestial header, Gauss, the same off-disk mask
(NaN beyond the stack's ``MASKRAD``).

Beside the truth, each truth file carries what the evaluation needs to know about the Sun
without importing it: the image extension ``CEILING``, the sign-blind ceiling
(:meth:`SyntheticSun.sign_blind_ceiling`) on the same grid and mask, and the table ``REGIONS``
(:mod:`farside_gan.synthetic.regions`), the active regions on the map's disk.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from farside_gan import __version__
from farside_gan.core.fitsio import read_fits, write_fits
from farside_gan.core.truth_file import CEILING_EXTNAME

log = logging.getLogger(__name__)


def truth_map(sun, stack_header: fits.Header, input_path=None) -> tuple[np.ndarray, fits.Header]:
    """(LOS field in Gauss on the stack's grid, masked like a prediction; its header)."""
    from farside_gan.products.magnetogram import product_header

    header = product_header(stack_header, "true LOS field of the synthetic Sun")
    field = _masked(sun.los_field, header, stack_header, input_path)
    header["INSTRUME"] = ("synthetic Sun", "what made the map")
    header["SYNSEED"] = (int(sun.seed), "synthetic Sun seed")
    header["SYNGRID"] = (float(sun.grid_deg), "[deg] synthetic Sun surface grid")
    if input_path is not None:
        header["INFILE"] = (Path(input_path).name[-68:], "stack whose grid this is")
    header.add_history(f"farside-gan {__version__}: noiseless LOS field of the synthetic Sun "
                       f"(seed {sun.seed}) on the grid of {Path(input_path).name if input_path else 'a stack'}")
    return field, header


def ceiling_hdu(sun, header: fits.Header, stack_header: fits.Header,
                input_path=None) -> fits.ImageHDU:
    """The ``CEILING`` extension of a truth map of ``header``: the sign-blind ceiling's LOS
    field (G) on the same grid, masked the same way, with the map's WCS."""
    data = _masked(sun.ceiling_los_field, header, stack_header, input_path)
    hdu = fits.ImageHDU(data=data, header=header.copy(), name=CEILING_EXTNAME)
    hdu.header["CONTENT"] = "sign-blind ceiling of the synthetic Sun"
    hdu.header.add_history("active regions with their Hale sign, polar caps kept, network and "
                           "coronal holes zeroed")
    return hdu


def _masked(los_field, header: fits.Header, stack_header: fits.Header, input_path) -> np.ndarray:
    """``los_field`` on the grid of a 2-D map ``header``, NaN beyond the stack's ``MASKRAD``."""
    from farside_gan.products.magnetogram import mask_off_disk
    from farside_gan.synthetic.projection import Geometry

    field = np.nan_to_num(los_field(Geometry.from_target(_with_shape(header, stack_header))),
                          nan=0.0)
    return mask_off_disk(field.astype(np.float32), stack_header, input_path)


def _with_shape(header: fits.Header, stack_header: fits.Header) -> fits.Header:
    """A copy of a 2-D map ``header`` with the stack's image size (NAXIS1, NAXIS2)."""
    shaped = header.copy()
    shaped["NAXIS"] = 2
    shaped["NAXIS1"], shaped["NAXIS2"] = int(stack_header["NAXIS1"]), int(stack_header["NAXIS2"])
    return shaped


def write_truth(sun, stack_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """A truth file for one stack: the truth (primary), ``CEILING`` and ``REGIONS``."""
    from farside_gan.synthetic.regions import regions_hdu, visible_regions

    _, stack_header = read_fits(stack_path)
    data, header = truth_map(sun, stack_header, stack_path)
    regions = visible_regions(sun, _with_shape(header, stack_header), stack_path)
    return write_fits(out_path, data, header,
                      extra_hdus=[ceiling_hdu(sun, header, stack_header, stack_path),
                                  regions_hdu(regions)])


def write_truth_maps(sun, prepared_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """``out_dir/<time>.fits`` (:func:`write_truth`) for every usable stack of a prepared
    period directory."""
    from farside_gan.prepare.period import read_prepared

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in read_prepared(prepared_dir):
        if entry["status"] != "ok":
            continue
        written.append(write_truth(sun, entry["stack"], out_dir / f"{entry['time']}.fits"))
        log.info("%s -> %s", entry["stack"], written[-1])
    return written


def carrington_truth(sun, grid_header: fits.Header, time, oversample: int = 5) -> np.ndarray:
    """The synthetic Sun's radial field (G) on a heliographic grid (a synchronic map's header):
    each pixel the mean of ``oversample`` x ``oversample`` samples across it, so it is the
    field at the grid's resolution, as a map made of observations would show it."""
    from astropy.wcs import WCS
    ny, nx = int(grid_header["NAXIS2"]), int(grid_header["NAXIS1"])
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    wcs = WCS(grid_header)
    total = np.zeros((ny, nx))
    for dy in offsets:
        for dx in offsets:
            x, y = np.meshgrid(np.arange(nx) + dx, np.arange(ny) + dy)
            lon, lat = wcs.pixel_to_world_values(x, y)
            total += sun.radial_field(np.mod(lon, 360.0), np.clip(lat, -90.0, 90.0), time)
    return (total / oversample ** 2).astype(np.float32)
