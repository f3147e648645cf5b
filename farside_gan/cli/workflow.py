"""Workflow helper commands for the report: ``quicklook`` (a PNG of a magnetogram map) and
``report-page`` (the landing page's data, evaluation table, loss figure and latest maps)."""

from __future__ import annotations


def quicklook(in_path, out_path, vmax: float = 1000.0):
    """Plot a FITS map with sunpy (``plots.quicklook_figure``) to a PNG, atomically."""
    import sunpy.map

    from farside_gan.errors import InputDataError
    from farside_gan.plots import quicklook_figure, save

    try:
        smap = sunpy.map.Map(in_path, hdus=0)  # the map; an ensemble adds UNCERTAINTY, ENSEMBLE
    except Exception as exc:  # sunpy raises several types for unreadable/invalid maps
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


def _report_page(args) -> int:
    from farside_gan.report import write_report_page

    galleries: dict[str, list[str]] = {}
    for label, directory in args.gallery:
        galleries.setdefault(label, []).append(directory)
    for path in write_report_page(args.out_dir, args.manifest, args.losses, summary=args.summary,
                                  galleries=galleries).values():
        print(path)
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

    p = subparsers.add_parser("report-page", help="the report's landing page: data, evaluation "
                              "table, loss figure, latest maps",
                              description="Writes OUT_DIR/losses.png and OUT_DIR/page.rst, which "
                              "the workflow's report description (workflow/report/workflow.rst) "
                              "includes: training times, pairs and dropped times by reason (from "
                              "the manifest), the evaluation summary as a table, the loss curves "
                              "and the latest map of each gallery, embedded.")
    p.add_argument("--manifest", required=True, help="the dataset manifest (data/manifest.csv)")
    p.add_argument("--losses", required=True, help="the training losses (losses.csv)")
    p.add_argument("--summary", help="the evaluation summary (summary.csv); without it the page "
                   "says there was no evaluation")
    p.add_argument("--gallery", nargs=2, action="append", default=[], metavar=("TITLE", "DIR"),
                   help="show how many PNGs DIR holds and the latest one under TITLE (repeatable; "
                   "the same TITLE adds directories)")
    p.add_argument("--out-dir", required=True, help="where losses.png and page.rst go")
    p.set_defaults(func=_report_page)
