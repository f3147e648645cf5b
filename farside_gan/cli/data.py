"""Data preparation commands: fetch, calibration-tables, calibrate, align, normalize, stack, manifest.

Long argument lists (manifest inputs) may be given in a file as ``@list.txt`` (one per line).
"""

from __future__ import annotations

import json
import sys


def _fetch(args):
    from farside_gan.download import fetch_observation

    periods = [tuple(p.split("/")) for p in args.eclipse_period or ()]
    record = fetch_observation(args.source, args.instrument, args.channel, args.time,
                               args.tolerance, args.out_dir, jsoc_email=args.jsoc_email,
                               eclipse_periods=periods, retries=args.retries)
    print(json.dumps({k: record[k] for k in ("status", "reason", "detail", "obs_time")}))
    return 0


def _calibration_tables(args):
    from farside_gan.calibrate import fetch_calibration_tables, write_demo_calibration_tables

    if args.offline_demo:
        paths = write_demo_calibration_tables(args.out_dir)
    else:
        paths = fetch_calibration_tables(args.out_dir, source=args.pointing_source)
    for p in paths:
        print(p)
    return 0


def _calibrate(args):
    from farside_gan.calibrate import calibrate_file

    calibrate_file(args.input, args.output, calibration_dir=args.calibration_dir)
    return 0


def _align(args):
    from farside_gan.align import align_file

    align_file(args.input, args.output, size=args.size, rsun_px=args.rsun_px,
               mask_radius=args.mask_radius, fill=args.fill, order=args.order)
    return 0


def _normalize(args):
    from farside_gan.normalize import check_euv_clip, normalize_file

    try:
        check_euv_clip(args.euv_clip)
    except ValueError as exc:
        raise SystemExit(f"farside-gan normalize: error: --euv-clip: {exc}") from None
    normalize_file(args.input, args.output, euv_median=args.euv_median,
                   euv_clip=tuple(args.euv_clip), hmi_clip=args.hmi_clip)
    return 0


def _stack(args):
    from farside_gan.dataset import stack_files
    from farside_gan.download import parse_duration

    stack_files(args.output, args.inputs, max_time_spread=parse_duration(args.max_time_spread))
    return 0


def _manifest(args):
    from farside_gan.dataset import build_manifest, load_records, write_manifest

    rows = build_manifest(load_records(args.records), args.stacks, args.targets,
                          pair_tolerance=args.pair_tolerance, seed=args.seed,
                          eval_months=args.eval_months)
    write_manifest(args.out, rows)
    counts = {}
    for r in rows:
        key = r["split"] if r["status"] == "ok" else f"dropped:{r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch", help="download the frame nearest a time, quality-check it",
                              description="Writes OUT_DIR/record.json always and OUT_DIR/frame.fits "
                              "when the frame is usable. Exit 0 for data problems (recorded), "
                              "non-zero when the source fails.")
    p.add_argument("--source", required=True,
                   help="archive directory, http://127.0.0.1:PORT/ archive, 'fido' or 'jsoc'")
    p.add_argument("--instrument", required=True, choices=["aia", "hmi", "euvi_a", "euvi_b"])
    p.add_argument("--channel", required=True, help="wavelength (304, 193, ...) or 'magnetogram'")
    p.add_argument("--time", required=True, help="wanted time, ISO (UTC)")
    p.add_argument("--tolerance", default="1h", help="e.g. 6m, 1h (default 1h)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--jsoc-email", default=None, help="JSOC-registered export email (source jsoc)")
    p.add_argument("--eclipse-period", action="append", metavar="START/END",
                   help="drop frames in this ISO period (repeatable)")
    p.add_argument("--retries", type=int, default=4)
    p.set_defaults(func=_fetch)

    p = subparsers.add_parser("calibration-tables", help="fetch (or write demo) AIA pointing and "
                              "degradation tables")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--offline-demo", action="store_true",
                   help="write nominal tables (no network), for synthetic data")
    p.add_argument("--pointing-source", default="lmsal", choices=["lmsal", "jsoc"])
    p.set_defaults(func=_calibration_tables)

    p = subparsers.add_parser("calibrate", help="raw frame -> calibrated frame (same grid)")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--calibration-dir", default=None, help="AIA tables (from calibration-tables)")
    p.set_defaults(func=_calibrate)

    p = subparsers.add_parser("align", help="calibrated frame -> centred, fixed-radius, north-up frame")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--rsun-px", type=float, default=450.0)
    p.add_argument("--mask-radius", type=float, default=0.98)
    p.add_argument("--fill", type=float, default=0.0)
    p.add_argument("--order", type=int, default=1, choices=[0, 1, 3],
                   help="interpolation order after anti-aliasing (default 1)")
    p.set_defaults(func=_align)

    p = subparsers.add_parser("normalize", help="aligned frame -> [-1, 1]")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--euv-median", type=float, default=100.0)
    p.add_argument("--euv-clip", type=float, nargs=2, default=[1.0, 200.0], metavar=("LO", "HI"))
    p.add_argument("--hmi-clip", type=float, default=3000.0)
    p.set_defaults(func=_normalize)

    p = subparsers.add_parser("stack", help="three normalized EUV channels -> one (3, N, N) FITS")
    p.add_argument("output", metavar="OUT")
    p.add_argument("inputs", metavar="IN", nargs=3, help="the channels in order: 304 193|195 171")
    p.add_argument("--max-time-spread", default="2h",
                   help="refuse channels observed further apart than this (default 2h: twice "
                   "the fetch tolerance)")
    p.set_defaults(func=_stack)

    p = subparsers.add_parser("manifest", fromfile_prefix_chars="@",
                              help="pair stacks with targets, split, record drops")
    p.add_argument("--out", required=True)
    p.add_argument("--records", nargs="*", default=[], help="fetch record.json files")
    p.add_argument("--stacks", nargs="*", default=[], help="AIA stack FITS files")
    p.add_argument("--targets", nargs="*", default=[], help="normalized HMI FITS files")
    p.add_argument("--pair-tolerance", default="6m")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-months", type=int, default=2)
    p.set_defaults(func=_manifest)
