"""The report's landing page (farside_gan.evaluation.report, `farside-gan report-page`): tables
with the manifest's and the summary's numbers, the loss figure and the maps embedded, rst that
docutils renders without a complaint."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import pytest

from farside_gan.evaluation import report

def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary_rows(side, observer, truth, n, cc, subsets=("all",)):
    """A comparison's rows of the long summary.csv: binned CC (mean ``cc``, median 0.777, an
    interval), its ceiling, AR CC and flux ratio, RMSE."""
    rows = []
    for k, subset in enumerate(subsets):
        for metric, mean, low, high in (("cc_binned", cc + 0.01 * k, cc - 0.05, cc + 0.05),
                                        ("ceiling_cc_binned", 0.98, 0.96, 0.99),
                                        ("cc_ar", cc + 0.1, "nan", "nan"),
                                        ("unsigned_flux_ratio", 0.87, 0.8, 0.95),
                                        ("rmse_binned", 123.4, "nan", "nan")):
            if metric == "ceiling_cc_binned" and truth != "synthetic":
                continue
            rows.append({"side": side, "observer": observer, "truth": truth, "subset": subset,
                         "metric": metric, "counted": "maps", "n": n, "mean": mean,
                         "median": 0.777, "fisher_z_mean": "nan", "ci_low": low,
                         "ci_high": high, "n_blocks": 4})
    return rows


@pytest.fixture
def run(tmp_path):
    """A run's tables: 7 training times (3 train, 1 eval, 3 dropped), 5 logged losses."""
    manifest = write_csv(tmp_path / "manifest.csv", [
        {"time": f"2011-01-0{i}T00:00:00", "split": split, "input": "s.fits", "target": "t.fits",
         "status": "ok", "reason": "", "detail": ""}
        for i, split in ((1, "train"), (2, "train"), (3, "train"), (4, "eval"))] + [
        {"time": "2011-01-05T00:00:00", "split": "", "input": "", "target": "",
         "status": "dropped", "reason": "eclipse", "detail": "DATE-OBS 2011-01-05T00:00:01 is "
         "inside the eclipse/transit period *2011-01-05* (T_OBS_)"},
        {"time": "2011-01-06T00:00:00", "split": "", "input": "", "target": "",
         "status": "dropped", "reason": "eclipse", "detail": "another"},
        {"time": "2011-01-07T00:00:00", "split": "", "input": "", "target": "",
         "status": "dropped", "reason": "quality_flag", "detail": "QUALITY = 1024"}])
    losses = write_csv(tmp_path / "losses.csv", [
        {"step": 10 * s, "epoch": s // 2, "lr": 2e-4, "loss_D": 1.0 / s, "loss_G": 3.0 / s,
         "loss_G_gan": 1.0 / s, "loss_G_fm": 0.2 / s, "loss_G_cc": "", "seconds": s}
        for s in range(1, 6)])
    return tmp_path, manifest, losses


def rendered(page: Path) -> str:
    """The page as the report renders it (docutils), failing on any docutils warning."""
    from docutils.core import publish_parts
    assert max(len(line) for line in page.read_text().splitlines()) < 10_000  # docutils' limit
    return publish_parts(page.read_text(), writer="html",
                         settings_overrides={"halt_level": 2, "report_level": 2})["html_body"]


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(re.sub(r"\s", "", m))
            for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_synthetic_run_page_has_the_tables_the_figure_and_the_latest_maps(run, tmp_path):
    out, manifest, losses = run
    summary = write_csv(out / "summary.csv", summary_rows("nearside", "sdo", "hmi", 2, 0.61)
                        + summary_rows("farside", "stereo_a", "synthetic", 3, 0.45,
                                       ("all", "clean", "anti_hale")))
    quicklooks = tmp_path / "ql"
    quicklooks.mkdir()
    pngs = {}
    for name, shade in (("20110101T0000", 0.2), ("20110102T0000", 0.8)):  # the later one is shown
        from matplotlib.figure import Figure

        from farside_gan.core.figures import save
        fig = Figure(figsize=(1, 1))
        fig.patch.set_facecolor(str(shade))
        pngs[name] = save(fig, quicklooks / f"{name}.png").read_bytes()
    paths = report.write_report_page(out / "report", manifest, losses, summary=summary,
                                     galleries={"STEREO-A farside": [quicklooks]})
    html = rendered(paths["page"])
    # the evaluation summary: a table, one column per comparison, means [interval] only
    assert html.index("<h1") < html.index("<table")  # sections: evaluation first
    table = html[html.index("Evaluation summary"):]
    table = table[:table.index("</table>")]
    assert "near side, SDO vs HMI" in table and "far side, STEREO-A vs synthetic truth" in table
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", table, re.S)]
    rows = {cells[i]: cells[i + 1:i + 3] for i in range(0, len(cells), 3)}
    assert rows["maps"] == ["2", "3"]
    # the headline: binned CC of all and clean maps with the ceiling beside it
    assert rows["CC binned, all maps"] == ["0.610 [0.560, 0.660]", "0.450 [0.400, 0.500]"]
    assert rows["sign-blind ceiling, all maps"] == ["-", "0.980 [0.960, 0.990]"]
    assert rows["CC binned, clean maps"] == ["-", "0.460 [0.400, 0.500]"]
    assert rows["CC active regions"] == ["0.710", "0.550"]  # no interval shown
    assert rows["RMSE binned (G)"] == ["123", "123"]
    assert rows["unsigned flux, generated / true"] == ["0.87 [0.80, 0.95]"] * 2
    assert list(rows)[:5] == ["maps", "CC binned, all maps", "sign-blind ceiling, all maps",
                              "CC binned, clean maps", "sign-blind ceiling, clean maps"]
    assert "CC quiet Sun" not in rows  # nothing to show: no row
    assert "0.777" not in table  # medians stay in summary.csv
    assert "synthetic Sun&#x27;s true line-of-sight field" in html or \
        "synthetic Sun's true line-of-sight field" in html
    # the data: counts and dropped times by reason, most frequent first, details as literals
    assert "<strong>7</strong> times, <strong>4</strong> usable AIA/HMI pairs (1 eval, 3 train)" \
        "," in html and "<strong>3</strong> dropped" in html
    reasons = html[html.index("Dropped times by reason"):]
    assert reasons.index("eclipse") < reasons.index("quality_flag")
    # a message's markup is shown, not interpreted
    assert "*2011-01-05* (T_OBS_)" in re.sub(r"<[^>]+>", "", reasons)
    # the loss figure, then the latest map of the gallery, embedded
    images = embedded_pngs(html)
    assert images[0] == paths["losses"].read_bytes() and images[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert images[1:] == [pngs["20110102T0000"]]
    assert "STEREO-A farside: 2 maps (shown: the latest, 20110102T0000)" in html


def test_real_run_page_says_there_is_no_farside_truth(run):
    out, manifest, losses = run
    summary = write_csv(out / "summary.csv", summary_rows("nearside", "sdo", "hmi", 2, 0.6))
    html = rendered(report.write_report_page(out / "report", manifest, losses, summary)["page"])
    assert "There is no farside truth" in html and "synthetic truth" not in html


def test_run_without_evaluation_says_so(run):
    out, manifest, losses = run
    html = rendered(report.write_report_page(out / "report", manifest, losses)["page"])
    assert "No evaluation in this run" in html and "Evaluation summary" not in html
