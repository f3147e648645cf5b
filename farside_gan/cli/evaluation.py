"""``farside-gan evaluate`` (scores against the truth), ``combine-metrics`` (several runs of the
same maps in one table) and ``report-page`` (the report's landing page: data, evaluation table,
loss figure and latest maps)."""

from __future__ import annotations


def register(subparsers) -> None:
    from farside_gan.core.instruments import NEARSIDE_LABEL

    p = subparsers.add_parser("evaluate", help="score generated magnetograms against the truth",
                              description="Writes OUT_DIR/metrics.csv (a row per map and "
                              "comparison), summary.csv (per comparison, subset and metric: mean, "
                              "median, Fisher-z mean, block-bootstrap 95%% interval), regions.csv "
                              "(leading polarity per map and region of a synthetic truth), "
                              "scatter.png, flux.png and maps/*.png. A "
                              "comparison SIDE/OBSERVER/TRUTH (e.g. farside/stereo_a/synthetic) "
                              "pairs PRED_DIR/<time>.fits with TARGET_DIR/<time>.fits; plain file "
                              "lists (--predictions/--targets) pair by DATE-OBS. Each map is "
                              "scored on its own disk (its R_SUN and MASKRAD); a NaN on it is an "
                              "error. A synthetic truth's CEILING and REGIONS extensions add the "
                              "ceiling's CC, the model/ceiling ratio and the anti-Hale flag.")
    p.add_argument("--comparison", nargs=3, action="append", default=[],
                   metavar=("LABEL", "PRED_DIR", "TARGET_DIR"),
                   help="score the maps of PRED_DIR against those of TARGET_DIR with the same "
                   "name, as comparison LABEL (repeatable; the same LABEL adds directories)")
    p.add_argument("--predictions", nargs="+", metavar="P.fits", help="generated maps (Gauss)")
    p.add_argument("--targets", nargs="+", metavar="T.fits",
                   help="their truths: normalized HMI targets or Gauss maps")
    p.add_argument("--label", default=NEARSIDE_LABEL,
                   help="comparison name of --predictions/--targets")
    p.add_argument("--out-dir", required=True, help="directory for the tables and plots")
    p.add_argument("--ar-threshold", type=float, default=100.0,
                   help="|B| (G, binned) at or above which a pixel is active region")
    p.add_argument("--qs-threshold", type=float, default=None,
                   help="|B| (G, binned) below which a pixel is quiet Sun (default: the AR "
                   "threshold)")
    p.add_argument("--bin", type=int, default=None,
                   help="binning factor (default: the solar area of 8x8 px at a 450-px radius)")
    p.add_argument("--time-tolerance", type=float, default=3600.0,
                   help="seconds between prediction and target DATE-OBS (file lists)")
    p.add_argument("--max-maps", type=int, default=20,
                   help="side-by-side map PNGs to draw per comparison")
    p.set_defaults(func=_evaluate)

    from farside_gan.evaluation.combine import COMBINABLE_METRICS, DEFAULT_METRICS
    p = subparsers.add_parser("combine-metrics", help="several runs (training seeds) of the same "
                              "maps in one table, with intervals",
                              description="Reads the metrics.csv of several runs scored on the "
                              "same maps and prints, per comparison, subset and metric, each "
                              "run's mean with its block-bootstrap 95%% interval and the mean "
                              "over the runs with an interval that covers the maps' sampling and "
                              "the runs' spread (resampling time blocks, then runs); writes the "
                              "same as a CSV.")
    p.add_argument("metrics", nargs="+", metavar="METRICS.csv", help="one metrics.csv per run")
    p.add_argument("--out", required=True, help="the combined table (CSV)")
    p.add_argument("--labels", nargs="+", default=None,
                   help="a name per run, in the order of the files (default: the file paths)")
    p.add_argument("--metric", dest="metric_names", action="append", default=None,
                   choices=COMBINABLE_METRICS, metavar="METRIC",
                   help=f"a metric to combine (repeatable; default: {' '.join(DEFAULT_METRICS)}; "
                   f"choices: {' '.join(COMBINABLE_METRICS)})")
    p.set_defaults(func=_combine_metrics)

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


def _evaluate(args) -> int:
    from farside_gan.evaluation.evaluate import (Comparison, evaluate_comparisons, pair_by_time,
                                                 pair_directories)
    comparisons: dict[str, Comparison] = {}
    try:
        for label, predictions, targets in args.comparison:
            if label not in comparisons:
                comparisons[label] = Comparison.from_label(label)
            pair_directories(comparisons[label], [predictions], [targets])
        if bool(args.predictions) != bool(args.targets):
            raise ValueError("--predictions and --targets go together")
        if args.predictions:
            comparison = comparisons.setdefault(args.label, Comparison.from_label(args.label))
            comparison.pairs += pair_by_time(args.predictions, args.targets, args.time_tolerance)
    except ValueError as exc:
        raise SystemExit(f"farside-gan evaluate: error: {exc}")
    if not comparisons:
        raise SystemExit("farside-gan evaluate: error: give --comparison or --predictions/--targets")
    print(evaluate_comparisons(list(comparisons.values()), args.out_dir, bin_factor=args.bin,
                               ar_threshold=args.ar_threshold, qs_threshold=args.qs_threshold,
                               max_maps=args.max_maps))
    return 0


def _combine_metrics(args) -> int:
    from farside_gan.evaluation.combine import (DEFAULT_METRICS, combine_runs, format_table,
                                                read_runs, write_combined)
    labels = args.labels or list(args.metrics)
    if len(labels) != len(args.metrics):
        raise SystemExit(f"farside-gan combine-metrics: error: {len(labels)} labels for "
                         f"{len(args.metrics)} files")
    rows = combine_runs(read_runs(args.metrics), labels, args.metric_names or DEFAULT_METRICS)
    print(format_table(rows))
    print(write_combined(args.out, rows))
    return 0


def _report_page(args) -> int:
    from farside_gan.evaluation.report import write_report_page

    galleries: dict[str, list[str]] = {}
    for label, directory in args.gallery:
        galleries.setdefault(label, []).append(directory)
    for path in write_report_page(args.out_dir, args.manifest, args.losses, summary=args.summary,
                                  galleries=galleries).values():
        print(path)
    return 0
