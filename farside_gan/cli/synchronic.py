"""``farside-gan synchronic``: whole-Sun Carrington maps from HMI and the farside maps."""

from __future__ import annotations

import argparse


def _role_path(text: str) -> tuple[str, str]:
    """'stereo_a=DIR' -> ('stereo_a', 'DIR') (argparse type)."""
    from farside_gan.synchronic import SOURCE_CODES
    role, sep, path = text.partition("=")
    if not sep or role not in SOURCE_CODES or not path:
        raise argparse.ArgumentTypeError(f"expected ROLE=PATH with ROLE one of "
                                         f"{list(SOURCE_CODES)}, not {text!r}")
    return role, path


def _grid_arguments(p, defaults) -> None:
    """The Carrington grid and how a map is put on it (synchronic, calibrate-uncertainty)."""
    from farside_gan.synchronic import ALGORITHMS, PROJECTIONS
    p.add_argument("--projection", choices=PROJECTIONS, default=defaults.projection,
                   help="Carrington grid: CEA (sine-latitude) or CAR (equal latitude steps)")
    p.add_argument("--pixels", type=int, nargs=2, default=list(defaults.pixels),
                   metavar=("NLON", "NLAT"), help="grid size, longitude x latitude")
    p.add_argument("--radial", action=argparse.BooleanOptionalAction, default=defaults.radial,
                   help="radial field B_LOS / mu (else the LOS field)")
    p.add_argument("--mu-min", type=float, default=defaults.mu_min,
                   help="a source is not used where it sees the surface at mu below this")
    p.add_argument("--algorithm", choices=ALGORITHMS, default=defaults.algorithm,
                   help="reproject_adaptive (anti-aliased) or bilinear reproject_interp")


def _settings(args, command: str):
    from farside_gan.synchronic import SynchronicSettings
    try:
        return SynchronicSettings(projection=args.projection, pixels=tuple(args.pixels),
                                  weight_power=getattr(args, "weight_power",
                                                       SynchronicSettings.weight_power),
                                  radial=args.radial, mu_min=args.mu_min,
                                  algorithm=args.algorithm)
    except ValueError as exc:
        raise SystemExit(f"farside-gan {command}: error: {exc}")


def register(subparsers) -> None:
    from farside_gan.synchronic import SynchronicSettings
    defaults = SynchronicSettings()
    p = subparsers.add_parser(
        "synchronic", help="whole-Sun Carrington maps: HMI near side, generated far side",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Reproject the observed HMI magnetogram and the generated STEREO-A/-B maps "
        "of one time onto a Carrington grid and merge them (weights mu**k). FITS: the field, "
        "extensions UNCERTAINTY (when the farside maps carry one), SOURCE, MU, PROVENANCE; "
        "PNGs with a Carrington grid. A period: --farside ROLE=DIR (maps <time>.fits) and "
        "--hmi-prepared DIR (a prepared HMI period) -> --out-dir DIR/<time>.fits for every time "
        "with a farside map. One time: --input ROLE=FILE ... --time T --output OUT.fits.")
    p.add_argument("--farside", action="append", type=_role_path, default=[],
                   metavar="ROLE=DIR", help="generated maps of a period (stereo_a or stereo_b)")
    p.add_argument("--hmi-prepared", metavar="DIR",
                   help="prepared HMI period directory (aligned/magnetogram/<time>.fits)")
    p.add_argument("--out-dir", help="synchronic maps of the period, <time>.fits")
    p.add_argument("--input", action="append", type=_role_path, default=[],
                   metavar="ROLE=FILE", help="one time: a map per role (hmi, stereo_a, stereo_b)")
    p.add_argument("--time", help="one time: the map's time (ISO)")
    p.add_argument("--output", metavar="OUT.fits", help="one time: the FITS file")
    p.add_argument("--png-dir", help="a PNG of each map (field and sources)")
    p.add_argument("--uncertainty-png-dir", help="a PNG of each map's uncertainty")
    _grid_arguments(p, defaults)
    p.add_argument("--weight-power", type=float, default=defaults.weight_power,
                   help="merge weight of a source: mu ** this")
    p.add_argument("--uncertainty-calibration", metavar="FILE.json",
                   help="multiply the merged uncertainty by this file's factor "
                   "(farside-gan calibrate-uncertainty)")
    p.set_defaults(func=_synchronic)

    p = subparsers.add_parser(
        "calibrate-uncertainty", help="fit the factor that calibrates the ensemble's sigma",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="The factor c such that 68.3%% of the pixels of the maps (with an "
        "UNCERTAINTY extension) err by at most c sigma against their truths of the same name "
        "(near-side maps of the evaluation months against the HMI aligned frames), on the "
        "Carrington grid of the synchronic maps (--grid: each map and truth reprojected as "
        "`synchronic` does) or on the maps' own on-disk pixels. Writes OUT.json: factor, the "
        "grid, the raw fraction within 1 sigma, pixels, maps, files.")
    p.add_argument("--pair", nargs=2, action="append", required=True,
                   metavar=("MAP_DIR", "TRUTH_DIR"),
                   help="maps <name>.fits and truths <name>.fits (repeatable; a map without "
                   "a truth is left out)")
    p.add_argument("--out", required=True, metavar="OUT.json",
                   help="the calibration file to write (JSON: the factor, the grid, the pairs)")
    p.add_argument("--grid", action=argparse.BooleanOptionalAction, default=True,
                   help="fit on the Carrington grid below, as the synchronic map uses it (else "
                   "on the maps' own pixels)")
    _grid_arguments(p, defaults)
    p.set_defaults(func=_calibrate)


def _synchronic(args) -> int:
    from pathlib import Path

    from farside_gan.synchronic import synchronic_period, write_synchronic
    settings = _settings(args, "synchronic")
    if args.input:
        if args.farside or args.hmi_prepared or args.out_dir or not (args.time and args.output):
            raise SystemExit("farside-gan synchronic: error: --input takes --time and --output "
                             "(and no --farside, --hmi-prepared, --out-dir)")
        from astropy.time import Time
        inputs = dict(args.input)
        if len(inputs) != len(args.input):
            raise SystemExit("farside-gan synchronic: error: one --input per role")
        name = Path(args.output).stem
        png = Path(args.png_dir) / f"{name}.png" if args.png_dir else None
        sigma_png = Path(args.uncertainty_png_dir) / f"{name}.png" \
            if args.uncertainty_png_dir else None
        print(write_synchronic(args.output, Time(args.time).to_datetime(), inputs, settings,
                               png=png, uncertainty_png=sigma_png,
                               calibration=args.uncertainty_calibration))
        return 0
    if not (args.farside and args.out_dir) or args.time or args.output:
        raise SystemExit("farside-gan synchronic: error: give --farside ROLE=DIR ... and "
                         "--out-dir (a period), or --input ROLE=FILE ... --time --output")
    for path in synchronic_period(args.out_dir, dict(args.farside), args.hmi_prepared, settings,
                                  png_dir=args.png_dir,
                                  uncertainty_png_dir=args.uncertainty_png_dir,
                                  calibration=args.uncertainty_calibration):
        print(path)
    return 0


def _calibrate(args) -> int:
    from pathlib import Path

    from farside_gan.uncertainty_calibration import fit_calibration
    pairs = [(m, Path(truths) / m.name) for maps, truths in args.pair
             for m in sorted(Path(maps).glob("*.fits"))]
    grid = _settings(args, "calibrate-uncertainty") if args.grid else None
    result = fit_calibration(pairs, args.out, grid)
    print(f"{args.out}: factor {result['factor']:.3f} ({result['within_1sigma_raw']:.3f} within "
          f"1 sigma before; {result['maps']} maps, {result['pixels']} pixels)")
    return 0
