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


def _quicklook(args) -> int:
    print(quicklook(args.input, args.output, vmax=args.vmax))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("quicklook", help="PNG of a magnetogram map (sunpy plot, grid)",
                              description="Plot a FITS map with its WCS and a heliographic grid.")
    p.add_argument("input", metavar="IN.fits")
    p.add_argument("output", metavar="OUT.png")
    p.add_argument("--vmax", type=float, default=1000.0, help="colour range +-vmax (map units)")
    p.set_defaults(func=_quicklook)
