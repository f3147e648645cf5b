"""Workflow helper commands: ``quicklook`` (a PNG of a magnetogram map for the report)."""

from __future__ import annotations


def quicklook(in_path, out_path, vmax: float = 1000.0):
    """Plot a FITS map with sunpy (its own WCS: heliographic grid, observer) to a PNG, atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import astropy.units as u
    import sunpy.map
    from matplotlib.figure import Figure

    from farside_gan.errors import InputDataError
    from farside_gan.fitsio import atomic_output

    try:
        smap = sunpy.map.Map(in_path)
    except Exception as exc:  # sunpy raises several types for unreadable/invalid maps
        raise InputDataError(in_path, f"cannot open as a sunpy map ({exc})", reason="corrupt_fits") from exc
    fig = Figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot(projection=smap)
    image = smap.plot(axes=ax, cmap="gray", vmin=-vmax, vmax=vmax)
    smap.draw_grid(axes=ax, grid_spacing=30 * u.deg, color="tab:orange", linewidth=0.5)
    lon = smap.observer_coordinate.lon.to_value("deg")
    ax.set_title(f"{smap.meta.get('telescop', '')} {smap.date.isot[:16]}  "
                 f"(observer lon {lon:+.1f} deg)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"B ({smap.unit})")
    with atomic_output(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    return out_path


def quicklook_files(inputs, out_dir, vmax: float = 1000.0) -> list:
    """A PNG per FITS map: ``inputs`` are files or directories of ``*.fits``; PNGs in
    ``out_dir`` named after the maps (the directory is made even when there are none)."""
    from pathlib import Path
    files = [f for i in map(Path, inputs)
             for f in (sorted(i.glob("*.fits")) if i.is_dir() else [i])]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [quicklook(f, Path(out_dir) / f"{f.stem}.png", vmax=vmax) for f in files]


def _quicklook(args) -> int:
    if args.out_dir:
        for path in quicklook_files([args.input, *args.more], args.out_dir, vmax=args.vmax):
            print(path)
        return 0
    if len(args.more) != 1:
        raise SystemExit("farside-gan quicklook: error: give IN.fits OUT.png, or --out-dir DIR "
                         "and maps or directories of maps")
    print(quicklook(args.input, args.more[0], vmax=args.vmax))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("quicklook", help="PNG of a magnetogram map (sunpy plot, grid)",
                              description="Plot a FITS map with its WCS and a heliographic grid.")
    p.add_argument("input", metavar="IN.fits", help="a FITS map (or, with --out-dir, a directory)")
    p.add_argument("more", nargs="*", metavar="OUT.png",
                   help="the PNG to write; with --out-dir, more maps or directories")
    p.add_argument("--out-dir", help="write <map name>.png here for every map given")
    p.add_argument("--vmax", type=float, default=1000.0, help="colour range +-vmax (map units)")
    p.set_defaults(func=_quicklook)
