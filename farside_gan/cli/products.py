"""``farside-gan predict`` (magnetograms from EUV stacks), ``synchronic`` and
``calibrate-uncertainty`` (whole-Sun Carrington maps from HMI and the farside maps, their
uncertainty's calibration), ``quicklook`` (a PNG of a map)."""

from __future__ import annotations

import argparse


def _role_path(text: str) -> tuple[str, str]:
    """'stereo_a=DIR' -> ('stereo_a', 'DIR') (argparse type)."""
    from farside_gan.products.synchronic import SOURCE_CODES
    role, sep, path = text.partition("=")
    if not sep or role not in SOURCE_CODES or not path:
        raise argparse.ArgumentTypeError(f"expected ROLE=PATH with ROLE one of "
                                         f"{list(SOURCE_CODES)}, not {text!r}")
    return role, path


def _grid_arguments(p, defaults) -> None:
    """The Carrington grid and how a map is put on it (synchronic, calibrate-uncertainty)."""
    from farside_gan.products.synchronic import ALGORITHMS, PROJECTIONS
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
    from farside_gan.products.synchronic import SynchronicSettings
    try:
        return SynchronicSettings(projection=args.projection, pixels=tuple(args.pixels),
                                  weight_power=getattr(args, "weight_power",
                                                       SynchronicSettings.weight_power),
                                  radial=args.radial, mu_min=args.mu_min,
                                  algorithm=args.algorithm)
    except ValueError as exc:
        raise SystemExit(f"farside-gan {command}: error: {exc}")


def register(subparsers) -> None:
    from farside_gan.products.synchronic import SynchronicSettings
    defaults = SynchronicSettings()
    p = subparsers.add_parser("predict", help="generate magnetograms from EUV stacks",
                              description="One magnetogram FITS (Gauss, NaN off the disk) per input "
                              "stack: in --out-dir named {instrument}_{YYYYMMDD_HHMMSS}.fits after "
                              "the input's instrument and DATE-OBS, or at the --output paths. A "
                              "stack whose frame conventions differ from the model's training "
                              "data is refused.")
    p.add_argument("--checkpoint", required=True, help="generator.pt or a training checkpoint")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out-dir", help="directory for the outputs, named after the inputs' times")
    dest.add_argument("--output", action="append", metavar="OUT.fits",
                      help="explicit output path, once per input stack, in order")
    p.add_argument("--batch-size", type=int, default=4, help="stacks per generator call")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 on CUDA, fp32 on the CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the generator on CUDA (pays over thousands of maps)")
    p.add_argument("--prepared", metavar="DIR",
                   help="a prepared period directory (`prepare`): every usable stack in it, "
                   "written as OUT_DIR/<time>.fits")
    members = p.add_mutually_exclusive_group()
    members.add_argument("--ensemble-members", type=int, default=0, metavar="N",
                         help="per-pixel uncertainty from a snapshot ensemble of N generators: "
                         "the checkpoint (a run's generator.pt) and the N-1 latest "
                         "checkpoints/epoch_NNNN.pt of its run; written as the maps' "
                         "UNCERTAINTY extension (G). 0: none. Costs N inferences per map")
    members.add_argument("--member", action="append", default=[], metavar="CKPT",
                         help="an ensemble member besides --checkpoint (e.g. another training "
                         "seed's generator.pt); repeatable; as --ensemble-members")
    p.add_argument("stacks", nargs="*", metavar="STACK.fits", help="EUV stacks (`stack`)")
    p.set_defaults(func=_predict)

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

    p = subparsers.add_parser("quicklook", help="PNG of a magnetogram map (sunpy plot, grid)",
                              description="Plot a FITS map with its WCS and a heliographic grid.")
    p.add_argument("input", metavar="IN.fits", help="a FITS map (or, with --out-dir, a directory)")
    p.add_argument("more", nargs="*", metavar="OUT.png",
                   help="the PNG to write; with --out-dir, more maps or directories")
    p.add_argument("--out-dir", help="write <map name>.png here for every map given")
    p.add_argument("--vmax", type=float, default=1000.0, help="colour range +-vmax (map units)")
    p.set_defaults(func=_quicklook)


def _synchronic(args) -> int:
    from pathlib import Path

    from farside_gan.products.synchronic import synchronic_period, write_synchronic
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

    from farside_gan.products.uncertainty_calibration import fit_calibration
    pairs = [(m, Path(truths) / m.name) for maps, truths in args.pair
             for m in sorted(Path(maps).glob("*.fits"))]
    grid = _settings(args, "calibrate-uncertainty") if args.grid else None
    result = fit_calibration(pairs, args.out, grid)
    print(f"{args.out}: factor {result['factor']:.3f} ({result['within_1sigma_raw']:.3f} within "
          f"1 sigma before; {result['maps']} maps, {result['pixels']} pixels)")
    return 0


def _predict(args) -> int:
    from farside_gan.products.inference import predict, predict_prepared
    options = dict(batch_size=args.batch_size, device=args.device, precision=args.precision,
                   compile=args.compile, ensemble=_ensemble(args))
    if args.prepared:
        if args.stacks or not args.out_dir:
            raise SystemExit("farside-gan predict: error: --prepared takes --out-dir and no "
                             "STACK.fits arguments")
        for path in predict_prepared(args.checkpoint, args.prepared, args.out_dir, **options):
            print(path)
        return 0
    if not args.stacks:
        raise SystemExit("farside-gan predict: error: give STACK.fits files or --prepared DIR")
    if args.output and len(args.output) != len(args.stacks):
        raise SystemExit(f"farside-gan predict: error: {len(args.output)} --output for "
                         f"{len(args.stacks)} stacks")
    for path in predict(args.checkpoint, args.stacks, args.out_dir, outputs=args.output,
                        **options):
        print(path)
    return 0


def _ensemble(args) -> list:
    """The ensemble members besides --checkpoint (``farside_gan.products.uncertainty``)."""
    if args.ensemble_members == 1 or args.ensemble_members < 0:
        raise SystemExit("farside-gan predict: error: --ensemble-members is 0 (none) or at "
                         f"least 2, not {args.ensemble_members}")
    if args.ensemble_members:
        from farside_gan.products.uncertainty import snapshot_members
        return snapshot_members(args.checkpoint, args.ensemble_members)[1:]
    return list(args.member)


def _quicklook(args) -> int:
    from farside_gan.products.quicklook import quicklook, quicklook_files

    if args.out_dir:
        for path in quicklook_files([args.input, *args.more], args.out_dir, vmax=args.vmax):
            print(path)
        return 0
    if len(args.more) != 1:
        raise SystemExit("farside-gan quicklook: error: give IN.fits OUT.png, or --out-dir DIR "
                         "and maps or directories of maps")
    print(quicklook(args.input, args.more[0], vmax=args.vmax))
    return 0
