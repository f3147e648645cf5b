"""Preparation commands: calibration-tables, calibrate, align, normalize, stack, prepare,
manifest.

Long argument lists (manifest inputs) may be given in a file as ``@list.txt`` (one per line).
"""

from __future__ import annotations

import json
import sys


def _calibration_tables(args):
    from farside_gan.prepare.calibrate import (fetch_calibration_tables,
                                               write_demo_calibration_tables)

    if args.offline_demo:
        paths = write_demo_calibration_tables(args.out_dir)
    else:
        paths = fetch_calibration_tables(args.out_dir, source=args.pointing_source)
    for p in paths:
        print(p)
    return 0


def _calibrate(args):
    from farside_gan.prepare.calibrate import calibrate_file

    calibrate_file(args.input, args.output, calibration_dir=args.calibration_dir)
    return 0


def _align(args):
    from farside_gan.prepare.align import align_file

    align_file(args.input, args.output, size=args.size, rsun_px=args.rsun_px,
               mask_radius=args.mask_radius, fill=args.fill, order=args.order)
    return 0


def _normalize(args):
    from farside_gan.prepare.normalize import check_euv_clip, normalize_file

    try:
        check_euv_clip(args.euv_clip)
    except ValueError as exc:
        raise SystemExit(f"farside-gan normalize: error: --euv-clip: {exc}") from None
    normalize_file(args.input, args.output, euv_median=args.euv_median,
                   euv_clip=tuple(args.euv_clip), hmi_clip=args.hmi_clip)
    return 0


def _stack(args):
    from farside_gan.core.times import parse_duration
    from farside_gan.prepare.stack import stack_files

    stack_files(args.output, args.inputs, max_time_spread=parse_duration(args.max_time_spread))
    return 0


def _prepare(args):
    from farside_gan.prepare.period import PrepareSettings, prepare_period

    settings = PrepareSettings(size=args.size, rsun_px=args.rsun_px, mask_radius=args.mask_radius,
                               fill=args.fill, euv_median=args.euv_median,
                               euv_clip=tuple(args.euv_clip), hmi_clip=args.hmi_clip)
    print(prepare_period(args.instrument, args.fetch_index, args.out_dir, settings,
                         calibration_dir=args.calibration_dir, workers=args.workers,
                         times=args.time or None))
    return 0


def _manifest(args):
    from farside_gan.prepare.manifest import build_manifest, load_records, write_manifest
    from farside_gan.prepare.period import prepared_inputs

    stacks, targets, prepare_drops = prepared_inputs(args.prepared)
    rows = build_manifest(load_records(args.records) + prepare_drops, args.stacks + stacks,
                          args.targets + targets, pair_tolerance=args.pair_tolerance,
                          seed=args.seed, eval_months=args.eval_months)
    write_manifest(args.out, rows)
    counts = {}
    for r in rows:
        key = r["split"] if r["status"] == "ok" else f"dropped:{r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    from farside_gan.core.geometry import IMAGE_SIZE, MASK_RADIUS, RSUN_PX
    from farside_gan.core.instruments import INSTRUMENTS
    from farside_gan.prepare.normalize import EUV_CLIP, EUV_MEDIAN, HMI_CLIP

    def geometry_arguments(p):
        p.add_argument("--size", type=int, default=IMAGE_SIZE,
                       help="co-aligned image size (pixels)")
        p.add_argument("--rsun-px", type=float, default=RSUN_PX,
                       help="solar radius in the image (pixels); written as R_SUN")
        p.add_argument("--mask-radius", type=float, default=MASK_RADIUS,
                       help="pixels beyond this many solar radii get --fill; written as MASKRAD")
        p.add_argument("--fill", type=float, default=0.0, help="value of masked pixels")

    def normalization_arguments(p):
        p.add_argument("--euv-median", type=float, default=EUV_MEDIAN,
                       help="on-disk EUV median scaled to this; written as NORMTGT")
        p.add_argument("--euv-clip", type=float, nargs=2, default=list(EUV_CLIP),
                       metavar=("LO", "HI"), help="EUV clip range before log10; written as "
                       "NORMCLO, NORMCHI")
        p.add_argument("--hmi-clip", type=float, default=HMI_CLIP,
                       help="HMI clip (Gauss), the Gauss of a normalized 1; written as NORMCLIP")

    p = subparsers.add_parser("calibration-tables",
                              help="fetch (or write demo) AIA pointing and degradation tables")
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory for the two ECSV tables")
    p.add_argument("--offline-demo", action="store_true",
                   help="write nominal tables (no network), for synthetic data")
    p.add_argument("--pointing-source", default="lmsal", choices=["lmsal", "jsoc"],
                   help="where aiapy gets the master pointing table")
    p.set_defaults(func=_calibration_tables)

    p = subparsers.add_parser("calibrate", help="raw frame -> calibrated frame (same grid)")
    p.add_argument("input", metavar="IN", help="raw frame (FITS)")
    p.add_argument("output", metavar="OUT", help="calibrated frame (FITS)")
    p.add_argument("--calibration-dir", default=None,
                   help="AIA tables (from calibration-tables); AIA frames need them")
    p.set_defaults(func=_calibrate)

    p = subparsers.add_parser("align",
                              help="calibrated frame -> centred, fixed-radius, north-up frame")
    p.add_argument("input", metavar="IN", help="calibrated frame (FITS)")
    p.add_argument("output", metavar="OUT", help="aligned frame (FITS)")
    geometry_arguments(p)
    p.add_argument("--order", type=int, default=1, choices=[0, 1, 3],
                   help="interpolation order after anti-aliasing")
    p.set_defaults(func=_align)

    p = subparsers.add_parser("normalize", help="aligned frame -> [-1, 1]")
    p.add_argument("input", metavar="IN", help="aligned frame (FITS)")
    p.add_argument("output", metavar="OUT", help="normalized frame (FITS)")
    normalization_arguments(p)
    p.set_defaults(func=_normalize)

    p = subparsers.add_parser("stack", help="three normalized EUV channels -> one (3, N, N) FITS")
    p.add_argument("output", metavar="OUT", help="the stack (FITS)")
    p.add_argument("inputs", metavar="IN", nargs=3, help="the channels in order: 304 193|195 171")
    p.add_argument("--max-time-spread", default="2h",
                   help="refuse channels observed further apart than this (twice the fetch "
                   "tolerance)")
    p.set_defaults(func=_stack)

    p = subparsers.add_parser("prepare", help="calibrate, align, normalize and stack a fetched period",
                              description="One instrument's frames of one fetch period through "
                              "calibrate -> align -> normalize (-> stack), in one process. Writes "
                              "OUT_DIR/records.json (each time ok or dropped, with the stage and "
                              "reason), aligned/<channel>/<time>.fits, stacks/<time>.fits (EUV) or "
                              "targets/<time>.fits (HMI).")
    p.add_argument("--instrument", required=True, choices=list(INSTRUMENTS),
                   help="which instrument's period")
    p.add_argument("--fetch-index", required=True, help="the period's fetch index (records.json)")
    p.add_argument("--out-dir", required=True, help="the period's prepared directory")
    p.add_argument("--calibration-dir", default=None,
                   help="AIA tables (from calibration-tables); AIA periods need them")
    geometry_arguments(p)
    normalization_arguments(p)
    p.add_argument("--workers", type=int, default=1, help="processes preparing times in parallel")
    p.add_argument("--time", action="append", metavar="YYYYMMDDTHHMM",
                   help="redo only this time (repeatable); the others' results are kept")
    p.set_defaults(func=_prepare)

    p = subparsers.add_parser("manifest", fromfile_prefix_chars="@",
                              help="pair stacks with targets, split, record drops")
    p.add_argument("--out", required=True, help="the manifest CSV to write")
    p.add_argument("--records", nargs="*", default=[], help="fetch record.json files")
    p.add_argument("--prepared", nargs="*", default=[],
                   help="prepared AIA and HMI period directories (their stacks, targets and drops)")
    p.add_argument("--stacks", nargs="*", default=[], help="AIA stack FITS files")
    p.add_argument("--targets", nargs="*", default=[], help="normalized HMI FITS files")
    p.add_argument("--pair-tolerance", default="6m",
                   help="an AIA stack's HMI target is the nearest within this")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-year month split")
    p.add_argument("--eval-months", type=int, default=2,
                   help="months of each year held out for evaluation")
    p.set_defaults(func=_manifest)
