"""``synth-archive``, ``serve-archive`` and ``synth-bad-files``: offline data sources."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path


def parse_cadence(text: str) -> timedelta:
    """'12h', '30m', '1d12h' -> a positive timedelta (argparse type)."""
    from farside_gan.core.times import parse_duration
    try:
        cadence = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if cadence <= timedelta(0):
        raise argparse.ArgumentTypeError("cadence must be positive")
    return cadence


def parse_fault(text: str) -> tuple[str, str, int]:
    """'aia/*.171.*:503:2' -> ('aia/*.171.*', '503', 2)."""
    from farside_gan.testing.http_archive import FAULT_KINDS
    parts = text.rsplit(":", 2)
    if len(parts) == 3 and parts[1] in FAULT_KINDS and parts[2].isdigit():
        return parts[0], parts[1], int(parts[2])
    pattern, _, kind = text.rpartition(":")
    if pattern and kind in FAULT_KINDS:
        return pattern, kind, 1
    raise argparse.ArgumentTypeError(f"not a fault: {text!r} (use GLOB:KIND[:COUNT], KIND in {FAULT_KINDS})")


def _synth_archive(args) -> int:
    from farside_gan.core.times import times_at_cadence
    from farside_gan.synthetic import SyntheticSun, build_archive
    if args.group and (args.start or args.end):
        raise SystemExit("farside-gan synth-archive: --group or --start/--end, not both")
    if not args.group and not (args.start and args.end):
        raise SystemExit("farside-gan synth-archive: --start and --end (or --group) are needed")
    groups = [(instruments, start, end, parse_cadence(cadence))
              for instruments, start, end, cadence in args.group] \
        or [(args.instruments, args.start, args.end, args.cadence)]
    sun = SyntheticSun(seed=args.seed, grid_deg=args.grid_deg)
    for instruments, start, end, cadence in groups:
        names = tuple(i.strip() for i in instruments.split(",") if i.strip())
        given = "--group" if args.group else "--start/--end"
        try:
            times = times_at_cadence(start, end, cadence)
        except ValueError as exc:
            raise SystemExit(f"farside-gan synth-archive: error: {given}: {exc}") from None
        if not times:
            raise SystemExit(f"farside-gan synth-archive: error: "
                             f"{'--group ' + instruments + ': ' if args.group else ''}"
                             f"--end {end} is before --start {start}: no times to observe")
        rows = build_archive(args.root, times, instruments=names, size=args.size,
                             euvi_size=args.euvi_size, seed=args.seed, progress=True, sun=sun,
                             workers=args.workers)
    print(f"{len(rows)} files in {Path(args.root) / 'catalog.csv'}")
    return 0


def _synth_truth(args) -> int:
    from farside_gan.synthetic.archive import read_sun
    from farside_gan.synthetic.truth import write_truth_maps
    paths = write_truth_maps(read_sun(args.sun), args.prepared, args.out_dir)
    print(f"{len(paths)} truth maps in {args.out_dir}")
    return 0


def _serve_archive(args) -> int:
    from farside_gan.testing.http_archive import ArchiveServer
    server = ArchiveServer(args.root, host=args.host, port=args.port)
    for pattern, kind, count in args.fault:
        server.inject_fault(pattern, kind, count)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _synth_bad_files(args) -> int:
    from farside_gan.testing.bad_files import make_bad_files
    for defect, path in make_bad_files(args.directory, size=args.size, seed=args.seed).items():
        print(f"{defect}\t{path}")
    return 0


def register(subparsers) -> None:
    from farside_gan.core.instruments import INSTRUMENTS

    p = subparsers.add_parser("synth-archive",
                              help="write a synthetic AIA/HMI/EUVI archive + catalog.csv")
    p.add_argument("root", type=Path, help="archive root directory")
    p.add_argument("--start", help="first nominal time (ISO, UTC)")
    p.add_argument("--end", help="last nominal time (ISO, UTC, inclusive)")
    p.add_argument("--cadence", type=parse_cadence, default="12h",
                   help="time between nominal times, e.g. 12h")
    p.add_argument("--instruments", default=",".join(INSTRUMENTS), help="comma-separated")
    p.add_argument("--group", nargs=4, action="append", default=[],
                   metavar=("INSTRUMENTS", "START", "END", "CADENCE"),
                   help="instead of --instruments/--start/--end/--cadence: these instruments "
                        "(comma-separated) from START to END every CADENCE; repeatable (the "
                        "workflow: AIA and HMI at the training times, each STEREO at its own)")
    p.add_argument("--size", type=int, default=256, help="AIA/HMI image size in pixels (real: 4096)")
    p.add_argument("--euvi-size", type=int, default=None,
                   help="EUVI image size (default: --size; real: 2048)")
    p.add_argument("--seed", type=int, default=0, help="the synthetic Sun's seed")
    p.add_argument("--grid-deg", type=float, default=0.2,
                   help="resolution of the synthetic Sun's surface grid in degrees (0.1 for >= 2048 px)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes rendering times in parallel (the files do not depend on it)")
    p.set_defaults(func=_synth_archive)

    p = subparsers.add_parser("synth-truth",
                              help="the synthetic Sun's true LOS field on each "
                              "map's grid (the truth predictions are scored against)",
                              description="For every usable stack of a prepared period directory, "
                              "write OUT_DIR/<time>.fits: the noiseless line-of-sight field (Gauss) "
                              "of the synthetic Sun the archive was made of, on the stack's grid, "
                              "seen by its observer, masked as predictions are (NaN off the disk).")
    p.add_argument("--sun", required=True, type=Path,
                   help="synthetic archive root (or its synthetic_sun.json)")
    p.add_argument("--prepared", required=True, type=Path, help="prepared period directory")
    p.add_argument("--out-dir", required=True, type=Path, help="directory for the truth maps")
    p.set_defaults(func=_synth_truth)

    p = subparsers.add_parser("serve-archive",
                              help="serve an archive over HTTP until interrupted")
    p.add_argument("root", type=Path, help="archive root directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    p.add_argument("--fault", type=parse_fault, action="append", default=[], metavar="GLOB:KIND[:COUNT]",
                   help="inject a fault (KIND: 503, 429, drop, truncate, trickle) into the next COUNT (default 1) "
                        "requests matching GLOB; repeatable")
    p.set_defaults(func=_serve_archive)

    p = subparsers.add_parser("synth-bad-files",
                              help="write one file per kind of defect")
    p.add_argument("directory", type=Path, help="directory for the files")
    p.add_argument("--size", type=int, default=64, help="image size in pixels")
    p.add_argument("--seed", type=int, default=0, help="the synthetic Sun's seed")
    p.set_defaults(func=_synth_bad_files)
