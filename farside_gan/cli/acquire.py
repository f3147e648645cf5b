"""Acquisition commands: fetch, fetch-period, plan."""

from __future__ import annotations

import json


def _source_options(args) -> dict:
    from farside_gan.core.times import parse_duration

    options = {"jsoc_email": args.jsoc_email, "retries": args.retries,
               "deadline_s": parse_duration(args.file_deadline).total_seconds()}
    if args.jsoc_url:
        options["jsoc_url"] = args.jsoc_url
    return options


def _eclipse_periods(args):
    return [tuple(p.split("/")) for p in args.eclipse_period or ()]


def _fetch(args):
    from farside_gan.acquire.download import fetch_observation

    record = fetch_observation(args.source, args.instrument, args.channel, args.time,
                               args.tolerance, args.out_dir, eclipse_periods=_eclipse_periods(args),
                               refetch=args.refetch, **_source_options(args))
    print(json.dumps({k: record[k] for k in ("status", "reason", "detail", "obs_time", "action")}))
    return 0


def _fetch_period(args):
    from farside_gan.acquire.download import fetch_period

    records = fetch_period(args.source, args.instrument, args.times, args.out_dir,
                           tolerance=args.tolerance, eclipse_periods=_eclipse_periods(args),
                           connections=args.connections, refetch=args.refetch, index=args.index,
                           **_source_options(args))
    counts = {}
    for r in records:
        key = f"{r['status']}:{r['action']}" if r["status"] == "ok" else f"dropped:{r['reason']}"
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, sort_keys=True))
    return 0


def _plan(args):
    import logging

    from farside_gan.config.workflow import config_warnings, load_config
    from farside_gan.plan import format_plan, plan_fetch

    config = load_config(args.configfile)
    for warning in config_warnings(config):
        logging.getLogger("farside_gan.plan").warning(warning)
    plan = plan_fetch(config)
    print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
    return 0


def register(subparsers) -> None:
    from farside_gan.core.instruments import INSTRUMENTS

    def source_arguments(p):
        p.add_argument("--source", required=True,
                       help="archive directory, http://host:PORT/ archive, 'fido' or 'jsoc'")
        p.add_argument("--instrument", required=True, choices=list(INSTRUMENTS),
                       help="which instrument's frames")
        p.add_argument("--tolerance", default="1h",
                       help="the frame nearest the wanted time within this (e.g. 6m, 1h)")
        p.add_argument("--out-dir", required=True, help="directory for the frames and records")
        p.add_argument("--jsoc-email", default=None, help="JSOC-registered export email (jsoc, and "
                       "AIA/HMI through fido)")
        p.add_argument("--jsoc-url", default=None,
                       help="another DRMS server than JSOC's (a mirror; the tests' fake)")
        p.add_argument("--eclipse-period", action="append", metavar="START/END",
                       help="drop frames in this ISO period (repeatable)")
        p.add_argument("--retries", type=int, default=4, help="attempts per file after the first")
        p.add_argument("--file-deadline", default="15m",
                       help="most time one file may take, all attempts together")
        p.add_argument("--refetch", action="store_true",
                       help="fetch again even where a verified frame for the same request is there "
                            "(it is replaced only once the new one is verified)")

    p = subparsers.add_parser("fetch", help="download the frame nearest a time, quality-check it",
                              description="Writes OUT_DIR/record.json and OUT_DIR/frame.fits when "
                              "the frame is usable; keeps a verified frame of the same request. "
                              "Exit 0 for data problems (recorded), non-zero when the source fails.")
    source_arguments(p)
    p.add_argument("--channel", required=True, help="wavelength (304, 193, ...) or 'magnetogram'")
    p.add_argument("--time", required=True, help="wanted time, ISO (UTC)")
    p.set_defaults(func=_fetch)

    p = subparsers.add_parser("fetch-period", fromfile_prefix_chars="@",
                              help="download every channel of an instrument at many times "
                                   "(JSOC: one export per month)",
                              description="Writes OUT_DIR/<channel>/<YYYYMMDDTHHMM>/record.json (+ "
                              "frame.fits when usable) for every channel and time, and the index "
                              "(--index) once all are done. Frames already fetched and verified for "
                              "the same request are kept; partial downloads and JSOC export ids "
                              "are kept for the next run. Exit 0 when every frame has a record "
                              "(dropped ones included), non-zero when a source fails.")
    source_arguments(p)
    p.add_argument("--times", nargs="+", required=True, metavar="TIME",
                   help="wanted times, ISO (UTC); or @file with one per line")
    p.add_argument("--index", default=None,
                   help="write the period's records here (JSON; default: none)")
    p.add_argument("--connections", type=int, default=2,
                   help="parallel downloads (JSOC export files, http archive, Fido)")
    p.set_defaults(func=_fetch_period)

    p = subparsers.add_parser("plan", help="what a configuration will fetch and store",
                              description="Frames per instrument, expected download bytes, export "
                              "requests and disk for raw, intermediate and final data of a "
                              "workflow configuration. The files are merged in the order given "
                              "(later ones override the keys they name) and checked as the "
                              "workflow checks them; nothing else is read: for what `snakemake "
                              "--configfile FILE` runs, give the workflow's default first "
                              "(config/config.yaml FILE).")
    p.add_argument("configfile", nargs="+",
                   help="config YAML file(s), e.g. config/config.yaml site.yaml")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_plan)
