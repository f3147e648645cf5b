"""What the landing page of ``snakemake --report`` shows about a run (``farside-gan report-page``).

The workflow's description (``workflow/report/workflow.rst``) states the configuration and
includes ``page.rst`` written here: the data (training times, pairs, dropped times by reason,
from the manifest), the evaluation summary as a table (which truth each number used), the loss
curves and the latest map of each gallery (farside quicklooks; synchronic or uncertainty maps
when a rule adds them). Figures are embedded as data URIs: the report is one HTML file, and
Snakemake 9.27's own ``embeddedfigure`` directive leaves the file path in place.
"""

from __future__ import annotations

import base64
import csv
import math
import os
from collections import Counter
from html import escape
from pathlib import Path

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import atomic_output
from farside_gan.core.instruments import INSTRUMENT_LIST, INSTRUMENTS, SIDES, TRAINING_TARGET

OBSERVER_NAMES = {i.observer: i.observatory.replace("_", "-") for i in INSTRUMENT_LIST}
SIDE_NAMES = {side: side.replace("side", " side") for side in SIDES}
TRUTH_NAMES = {TRAINING_TARGET: INSTRUMENTS[TRAINING_TARGET].camera, "synthetic": "synthetic truth"}
#: The summary's rows on the landing page (one column per comparison): (metric, subset, what it
#: is, format, with its interval). The headline first: binned CC of all and of clean maps, the
#: sign-blind ceiling beside it.
SUMMARY_TABLE = (
    ("cc_binned", "all", "CC binned, all maps", "{:.3f}", True),
    ("ceiling_cc_binned", "all", "sign-blind ceiling, all maps", "{:.3f}", True),
    ("cc_binned", "clean", "CC binned, clean maps", "{:.3f}", True),
    ("ceiling_cc_binned", "clean", "sign-blind ceiling, clean maps", "{:.3f}", True),
    ("cc_binned", "anti_hale", "CC binned, anti-Hale maps", "{:.3f}", True),
    ("cc_binned_over_ceiling", "all", "CC binned / ceiling, all maps", "{:.2f}", True),
    ("cc", "all", "CC", "{:.3f}", False),
    ("cc_ar", "all", "CC active regions", "{:.3f}", False),
    ("cc_qs", "all", "CC quiet Sun", "{:.3f}", False),
    ("cc_binned_mu_centre", "all", "CC binned, mu >= 0.8", "{:.3f}", False),
    ("cc_binned_mu_middle", "all", "CC binned, 0.5 <= mu < 0.8", "{:.3f}", False),
    ("cc_binned_mu_limb", "all", "CC binned, mu < 0.5", "{:.3f}", False),
    ("rmse_binned", "all", "RMSE binned (G)", "{:.0f}", False),
    ("unsigned_flux_ratio", "all", "unsigned flux, generated / true", "{:.2f}", True),
    ("unsigned_flux_ratio_q1", "all", "... weakest quarter of true flux", "{:.2f}", False),
    ("unsigned_flux_ratio_q4", "all", "... strongest quarter of true flux", "{:.2f}", False),
    ("unsigned_flux_within_10pct", "all", "maps with unsigned flux within 10%", "{:.2f}", False),
    ("net_flux_error", "all", "abs(net flux error) / true unsigned flux", "{:.3f}", False),
    ("leading_right_fraction_hale", "all", "leading polarity right, Hale regions", "{:.2f}",
     False),
    ("leading_right_fraction_anti_hale", "all", "leading polarity right, anti-Hale regions",
     "{:.2f}", False),
    ("leading_right_fraction", "all", "leading polarity right (region-maps)", "{:.2f}", False),
)


def read_rows(path: str | os.PathLike) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputDataError(path, f"unreadable table ({exc})", reason="corrupt_table") from exc


# ------------------------------------------------------------------------------ the data

def manifest_counts(rows: list[dict]) -> dict:
    """Training times, usable pairs per split, dropped times per reason (with a first detail)."""
    ok = [r for r in rows if r["status"] == "ok"]
    dropped = [r for r in rows if r["status"] != "ok"]
    reasons = Counter(r["reason"] or "unknown" for r in dropped)
    example = {}
    for r in dropped:
        example.setdefault(r["reason"] or "unknown", r.get("detail", ""))
    return {"times": len(rows), "ok": len(ok),
            "splits": dict(sorted(Counter(r["split"] for r in ok).items())),
            "dropped": len(dropped),
            "reasons": [(reason, n, example[reason]) for reason, n in reasons.most_common()]}


def data_section(counts: dict) -> str:
    splits = ", ".join(f"{n} {split}" for split, n in counts["splits"].items()) or "none"
    lines = ["Data", "----", "",
             f"The manifest (``data/manifest.csv``) lists every training time: **{counts['times']}** "
             f"times, **{counts['ok']}** usable AIA/HMI pairs ({splits}), "
             f"**{counts['dropped']}** dropped.", ""]
    if counts["reasons"]:
        lines += list_table(("dropped because", "times", "first detail"),
                            [(_literal(reason), str(n), _literal(_shorten(detail, 90)))
                             for reason, n, detail in counts["reasons"]],
                            title="Dropped times by reason", widths=(3, 1, 8))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ the evaluation

def comparison_name(row: dict) -> str:
    return (f"{SIDE_NAMES.get(row['side'], row['side'])}, "
            f"{OBSERVER_NAMES.get(row['observer'], row['observer'])} vs "
            f"{TRUTH_NAMES.get(row['truth'], row['truth'])}")


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _cell(row: dict | None, fmt: str, interval: bool) -> str:
    """``mean [low, high]`` of a summary row ('-' where it is not defined)."""
    mean = _number(row.get("mean")) if row else math.nan
    if math.isnan(mean):
        return "-"
    text = fmt.format(mean)
    low, high = _number(row.get("ci_low")), _number(row.get("ci_high"))
    if interval and not (math.isnan(low) or math.isnan(high)):
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def evaluation_section(summary: list[dict] | None) -> str:
    lines = ["Evaluation", "----------", ""]
    if summary is None:
        return "\n".join(lines + ["No evaluation in this run (no evaluation month among the "
                                  "training times).", ""])
    comparisons = list(dict.fromkeys((r["side"], r["observer"], r["truth"]) for r in summary))
    by_key = {(r["side"], r["observer"], r["truth"], r["subset"], r["metric"]): r
              for r in summary}
    truths = {truth for _, _, truth in comparisons}
    if "synthetic" in truths:
        lines += ["A synthetic archive: the synthetic Sun's true line-of-sight field on each "
                  "map's own grid is the truth, on the near side (SDO) and on the far side "
                  "(STEREO); the near side is also scored against the archive's HMI "
                  "magnetograms.", ""]
    else:
        lines += ["A real archive: the near side (SDO) is scored against HMI. **There is no "
                  "farside truth**, so the farside maps are not scored.", ""]
    table = [(heading,) + tuple(_cell(by_key.get((*c, subset, metric)), fmt, interval)
                                for c in comparisons)
             for metric, subset, heading, fmt, interval in SUMMARY_TABLE
             if any(by_key.get((*c, subset, metric)) for c in comparisons)]
    maps = ("maps",) + tuple(str(by_key.get((*c, "all", "cc_binned"), {}).get("n", "-"))
                             for c in comparisons)
    names = tuple(comparison_name(dict(zip(("side", "observer", "truth"), c)))
                  for c in comparisons)
    lines += list_table(("",) + names, [maps] + table,
                        title="Evaluation summary: means over the maps of each comparison "
                              "[95% interval]", widths=(3,) + (2,) * len(comparisons))
    ceiling = ("Sign-blind ceiling: the truth with every active region given its Hale sign, "
               "network and coronal-hole fields zeroed, the best an EUV-only model can do; "
               "clean maps: no anti-Hale region of note on the disk. "
               if "synthetic" in truths else "")
    lines += ["Pearson CC pixel by pixel on the disk, at full resolution and binned to the solar "
              "area of 8x8 pixels at 1024 px (Jeong et al. 2022: 0.88 full disk, 0.91 active "
              f"regions, 0.70 quiet Sun on real data). {ceiling}Active regions: binned pixels "
              "where the true or the generated field reaches the active-region threshold "
              "(``farside-gan evaluate --ar-threshold``), quiet Sun the rest. Intervals: block "
              "bootstrap over two-week blocks of observation time. Leading polarity right: the "
              "share of regions whose leading polarity has the true sign (with a region table "
              "each region once per passage, at its map nearest disk centre); -: not defined "
              "(too few pixels, regions or blocks). Per map: "
              "``results/evaluation/metrics.csv``; every statistic: ``summary.csv``.", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- figures

def image_html(path: str | os.PathLike, alt: str, width: str = "100%") -> str:
    """An <img> holding the PNG as a data URI, on lines of 76 characters (docutils refuses
    longer lines; a URL parser drops the line breaks)."""
    data = base64.encodebytes(Path(path).read_bytes()).decode("ascii").strip()
    return (f'<img alt="{escape(alt)}" style="display:inline-block; width:{width}; '
            f'max-width:none; margin:0.3em 0" '
            f'src="data:image/png;base64,\n{data}"/>')


def raw_html(html: str) -> list[str]:
    return [".. raw:: html", ""] + [f"   {line}" for line in html.splitlines()] + [""]


def training_section(losses_png: Path) -> str:
    lines = ["Training", "--------", ""]
    lines += raw_html(image_html(losses_png, "training losses", width="80%"))
    lines += ["Losses logged during training (``results/model/losses.csv``): the discriminator's "
              "least-squares GAN loss, the generator's GAN and feature-matching terms (and its "
              "correlation term when used); dotted: the learning rate.", ""]
    return "\n".join(lines) + "\n"


def gallery_section(title: str, galleries: dict[str, list[Path]]) -> str:
    """The latest PNG of each gallery, side by side, with how many there are."""
    lines = [title, "-" * len(title), ""]
    shown = {label: pngs for label, pngs in galleries.items() if pngs}
    for label, pngs in galleries.items():
        if not pngs:
            lines += [f"{label}: no maps.", ""]
    if shown:
        lines += [" ".join(f"{label}: {len(pngs)} map{'s' if len(pngs) != 1 else ''} "
                           f"(shown: the latest, {pngs[-1].stem})." for label, pngs in shown.items()),
                  ""]
        width = f"{100 / min(len(shown), 2) - 1:.0f}%"
        lines += raw_html("<div>" + " ".join(image_html(pngs[-1], f"{label} {pngs[-1].stem}",
                                                        width) for label, pngs in shown.items())
                          + "</div>")
    return "\n".join(lines) + "\n"


def gallery_files(directories) -> list[Path]:
    """The PNGs of some directories, in time order (their names are time keys)."""
    return sorted((p for d in map(Path, directories) for p in Path(d).glob("*.png")),
                  key=lambda p: p.name)


# ---------------------------------------------------------------------------- rst

def list_table(header, rows, title: str = "", widths=None) -> list[str]:
    """An rst list-table (docutils renders it as an HTML table)."""
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(map(str, widths))}")
    lines.append("")
    for row in (header, *rows):
        cells = [_rst_cell(c) for c in row]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {c}" for c in cells[1:]]
    return lines + [""]


def _rst_cell(text) -> str:
    """One line, safe as a list-table cell (no list marker at its start)."""
    text = " ".join(str(text).split())
    return "\\" + text if text[:1] in ("-", "*", "+", "#", "|") else text


def _literal(text: str) -> str:
    """Inline literal: a file's message may hold rst markup (``T_``, ``*``)."""
    text = " ".join(str(text).split()).replace("`", "'")
    return f"``{text}``" if text else ""


def _shorten(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def write_report_page(out_dir: str | os.PathLike, manifest: str | os.PathLike,
                      losses: str | os.PathLike, summary: str | os.PathLike | None = None,
                      galleries: dict[str, list] | None = None) -> dict[str, Path]:
    """Write ``out_dir/losses.png`` and ``out_dir/page.rst`` (included by the report's
    description); ``galleries`` maps a title to the directories of its PNGs."""
    from farside_gan.core.figures import save
    from farside_gan.training.figures import losses_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loss_rows = read_rows(losses)
    if not loss_rows:
        raise InputDataError(losses, "no logged losses (an empty losses.csv)", reason="empty_table")
    losses_png = save(losses_figure(loss_rows), out_dir / "losses.png", dpi=90)
    # what a reader looks for first comes first: the scores, the training, the maps, the data
    text = [evaluation_section(read_rows(summary) if summary else None),
            training_section(losses_png)]
    if galleries:
        text.append(gallery_section("Latest maps", {label: gallery_files(dirs)
                                             for label, dirs in galleries.items()}))
    text.append(data_section(manifest_counts(read_rows(manifest))))
    page = out_dir / "page.rst"
    with atomic_output(page, suffix=".rst") as tmp:
        Path(tmp).write_text("\n".join(text))
    return {"page": page, "losses": losses_png}
