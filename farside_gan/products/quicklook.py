"""Quicklooks: a PNG of each magnetogram map, as sunpy plots it (``products.figures``)."""

from __future__ import annotations


def quicklook(in_path, out_path, vmax: float = 1000.0):
    """Plot a FITS map with sunpy (``products.figures.quicklook_figure``) to a PNG, atomically."""
    import sunpy.map

    from farside_gan.core.errors import InputDataError
    from farside_gan.core.figures import save
    from farside_gan.core.fitsio import read_fits
    from farside_gan.products.figures import quicklook_figure

    data, header = read_fits(in_path, hdu=0)  # the map; an ensemble adds UNCERTAINTY, ENSEMBLE
    try:
        smap = sunpy.map.Map(data, header)
    except Exception as exc:  # sunpy raises several types for maps it cannot place
        raise InputDataError(in_path, f"cannot open as a sunpy map ({exc})", reason="corrupt_fits") from exc
    return save(quicklook_figure(smap, vmax=vmax), out_path, dpi=90)


def quicklook_files(inputs, out_dir, vmax: float = 1000.0) -> list:
    """A PNG per FITS map: ``inputs`` are files or directories of ``*.fits``; PNGs in
    ``out_dir`` named after the maps (the directory is made even when there are none)."""
    from pathlib import Path
    files = [f for i in map(Path, inputs)
             for f in (sorted(i.glob("*.fits")) if i.is_dir() else [i])]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [quicklook(f, Path(out_dir) / f"{f.stem}.png", vmax=vmax) for f in files]
