"""Co-alignment: one resampling from the raw pixel grid to the centred, fixed-radius output grid.

The output grid is a helioprojective TAN image of ``size`` x ``size`` pixels, north up, the Sun's
centre at CRPIX = (size + 1) / 2 and the solar radius ``rsun_px`` pixels, seen by the same
observer as the input. Output -> input pixel coordinates are exactly given by the two WCSs;
over a solar disk the map is affine to far below a pixel, so we fit an affine transform to
points mapped exactly by astropy's WCS (residual checked) and resample with
``scipy.ndimage.affine_transform``. This honours CROTA/PC (HMI's 180 degrees, EUVI's roll),
the plate scale and the pointing at once.

Anti-aliasing for the ~4x downsampling: the input is first block-averaged by the integer part
``k`` of the scale factor (an exact area average: cheap and alias-free), then Gaussian-smoothed
for the remaining fractional factor, then interpolated. Pixels beyond ``mask_radius`` solar
radii, and pixels outside the input field of view, get the fill value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from farside_gan import __version__
from farside_gan.core.conventions import write_geometry
from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_fits, set_mjd_keywords, write_fits
from farside_gan.core.geometry import IMAGE_SIZE, MASK_RADIUS, RSUN_PX, radius_map
from farside_gan.core.header_checks import check_align_input
from farside_gan.core.instruments import INSTRUMENTS, instrument_of

#: Keywords copied unchanged from the input header (when present).
COPIED_KEYWORDS = (
    "TELESCOP", "INSTRUME", "DETECTOR", "OBSRVTRY", "WAVELNTH", "WAVEUNIT", "WAVE_STR", "CONTENT",
    "DATE-OBS", "DATE-AVG", "DATE-END", "T_OBS", "T_REC", "TIMESYS", "EXPTIME", "BUNIT", "QUALITY",
    "CAR_ROT", "DEGRADAT", "FILTER", "ORIGIN",
)
#: Maximum disagreement (output pixels) tolerated between the affine fit and the exact WCS map.
MAX_AFFINE_RESIDUAL = 0.05


def _input_map(data: np.ndarray, header: fits.Header):
    import sunpy.map
    from sunpy.util.exceptions import SunpyUserWarning

    if "WAVELNTH" in header and "WAVEUNIT" not in header:
        header = header.copy()
        header["WAVEUNIT"] = "angstrom"  # sunpy cannot parse the wavelength without it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SunpyUserWarning)
        return sunpy.map.Map(data, header)


def output_header(smap, size: int, rsun_px: float, header_in: fits.Header | None = None) -> fits.Header:
    """Header of the aligned frame: helioprojective TAN WCS, north up, disk of ``rsun_px`` pixels."""
    observer = smap.observer_coordinate
    rsun_angle = smap.rsun_obs.to_value("rad")
    dsun = observer.radius.to_value("m")
    # TAN projection: the limb at angle rsun_angle lies at tan(rsun_angle) from the centre.
    cdelt = np.degrees(np.tan(rsun_angle)) * 3600.0 / rsun_px
    h = fits.Header()
    h["NAXIS"] = 2
    h["NAXIS1"] = size
    h["NAXIS2"] = size
    for key in COPIED_KEYWORDS:
        if header_in is not None and key in header_in:
            h[key] = header_in[key]
    if "WAVELNTH" in h:
        h["WAVEUNIT"] = h.get("WAVEUNIT", "angstrom")
    h["DATE-OBS"] = smap.date.isot
    set_mjd_keywords(h)  # and of DATE-AVG/DATE-END when copied: WCS readers have nothing to fix
    h["WCSNAME"] = "Helioprojective-cartesian"
    h["CTYPE1"], h["CTYPE2"] = "HPLN-TAN", "HPLT-TAN"
    h["CUNIT1"], h["CUNIT2"] = "arcsec", "arcsec"
    h["CRPIX1"] = h["CRPIX2"] = (size + 1) / 2.0
    h["CRVAL1"] = h["CRVAL2"] = 0.0
    h["CDELT1"] = h["CDELT2"] = cdelt
    h["PC1_1"], h["PC1_2"], h["PC2_1"], h["PC2_2"] = 1.0, 0.0, 0.0, 1.0
    h["CROTA2"] = 0.0
    h["HGLN_OBS"] = (observer.lon.to_value("deg"), "[deg] Stonyhurst longitude of observer")
    h["HGLT_OBS"] = (observer.lat.to_value("deg"), "[deg] Stonyhurst latitude of observer")
    h["DSUN_OBS"] = (dsun, "[m] observer distance from Sun centre")
    h["RSUN_OBS"] = (np.degrees(rsun_angle) * 3600.0, "[arcsec] angular radius of the Sun")
    # RSUN_REF consistent with RSUN_OBS, so sunpy draws the limb where the data has it.
    h["RSUN_REF"] = (dsun * np.sin(rsun_angle), "[m] solar radius used for the disk")
    known = instrument_of(h)
    if known is not None:  # the keyword its sunpy map class reads (EUVIMap reads RSUN)
        h[INSTRUMENTS[known].rsun_keyword] = h["RSUN_OBS"]
    h["LVL_NUM"] = 1.5
    h["CREATOR"] = f"farside-gan {__version__}"
    return h


def _block_average(data: np.ndarray, k: int) -> np.ndarray:
    ny, nx = (data.shape[0] // k) * k, (data.shape[1] // k) * k
    view = data[:ny, :nx].reshape(ny // k, k, nx // k, k)
    return view.mean(axis=(1, 3), dtype=np.float32)


def affine_from_wcs(wcs_out: WCS, wcs_in: WCS, size: int, n_points: int = 9):
    """Affine (matrix, offset) mapping output (row, col) to input (row, col), fitted to the exact
    WCS mapping at ``n_points`` x ``n_points`` points across the disk; and the fit residual (px)."""
    grid = np.linspace(0.1 * size, 0.9 * size, n_points)
    xo, yo = [a.ravel() for a in np.meshgrid(grid, grid)]
    lon, lat = wcs_out.pixel_to_world_values(xo, yo)
    xi, yi = wcs_in.world_to_pixel_values(lon, lat)
    design = np.column_stack([yo, xo, np.ones_like(xo)])  # (row, col) order for ndimage
    coef_r, *_ = np.linalg.lstsq(design, yi, rcond=None)
    coef_c, *_ = np.linalg.lstsq(design, xi, rcond=None)
    resid = np.hypot(design @ coef_r - yi, design @ coef_c - xi).max()
    matrix = np.array([coef_r[:2], coef_c[:2]])
    offset = np.array([coef_r[2], coef_c[2]])
    return matrix, offset, float(resid)


def align_frame(data: np.ndarray, header: fits.Header, size: int = IMAGE_SIZE,
                rsun_px: float = RSUN_PX, mask_radius: float = MASK_RADIUS, fill: float = 0.0,
                order: int = 1, path=None) -> tuple[np.ndarray, fits.Header]:
    """Resample a calibrated frame onto the co-aligned grid; returns (float32 image, header).

    The header must give the whole geometry (``validation.REQUIRED["align"]``: DATE-OBS, WCS,
    roll, observer), with plausible values; sunpy would otherwise fill the gaps with guesses.
    """
    if not (int(size) == size >= 8 and 0 < rsun_px <= size / 2 and 0 < mask_radius):
        raise ValueError(f"align needs an integer size >= 8, 0 < rsun_px <= size / 2 and a "
                         f"positive mask_radius; got size {size}, rsun_px {rsun_px}, "
                         f"mask_radius {mask_radius}")
    check_align_input(data, header, path)
    try:
        smap = _input_map(data, header)
        wcs_in = smap.wcs.celestial
        header_out = output_header(smap, size, rsun_px, header)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InputDataError(path, f"header does not give a usable WCS/observer ({exc})",
                             reason="inconsistent_header") from exc
    wcs_out = WCS(header_out).celestial
    matrix, offset, resid = affine_from_wcs(wcs_out, wcs_in, size)
    # Output pixel spacing in input pixels: the downsampling factor.
    scale = float(np.sqrt(abs(np.linalg.det(matrix))))
    resid = resid / scale  # in output pixels
    if not resid <= MAX_AFFINE_RESIDUAL:
        raise InputDataError(path, f"WCS mapping is not affine over the disk (residual {resid:.3f} px)",
                             reason="inconsistent_header")
    image = np.asarray(data, dtype=np.float32)
    if not np.isfinite(image).all():
        image = np.where(np.isfinite(image), image, np.float32(0))
    k = int(np.floor(scale)) if scale >= 2 else 1
    if k > 1:
        image = _block_average(image, k)
        # binned index j covers input pixels k*j .. k*j+k-1: input = k*j + (k-1)/2
        matrix = matrix / k
        offset = (offset - (k - 1) / 2.0) / k
    residual_scale = scale / k
    if residual_scale > 1.05:
        image = ndimage.gaussian_filter(image, sigma=(residual_scale - 1) / 2, mode="nearest")
    out = ndimage.affine_transform(image, matrix, offset=offset, output_shape=(size, size),
                                   order=order, mode="constant", cval=fill, prefilter=order > 1)
    out = out.astype(np.float32, copy=False)
    out[radius_map(size) > mask_radius * rsun_px] = np.float32(fill)
    write_geometry(header_out, rsun_px, mask_radius)
    header_out["FILLVAL"] = float(fill)
    header_out.add_history(f"farside-gan align: {data.shape[1]}x{data.shape[0]} -> {size}x{size}, "
                           f"block-average {k}, gaussian {max(residual_scale - 1, 0) / 2:.2f} px, "
                           f"affine order {order} (WCS fit residual {resid:.4f} px)")
    return out, header_out


def align_file(in_path, out_path, size: int = IMAGE_SIZE, rsun_px: float = RSUN_PX,
               mask_radius: float = MASK_RADIUS, fill: float = 0.0, order: int = 1) -> Path:
    data, header = read_fits(in_path)
    out, header = align_frame(data, header, size, rsun_px, mask_radius, fill, order, path=in_path)
    return write_fits(out_path, out, header)

