# The report's landing page (`snakemake --report report.html`): workflow/report/workflow.rst
# states the configuration and includes results/report/page.rst, which report_page writes from
# what the run produced (the manifest's counts and drops, the evaluation summary as a table, the
# loss curves, the latest map of each gallery; `farside-gan report-page`).
#
# Hook for more maps (synchronic, uncertainty): add their PNG directories to report_galleries()
# below, and mark the PNGs in their own rule with report(..., category="Synchronic") or
# category="Uncertainty"; workflow.rst links any category the report has.


def report_galleries():
    """{title: [directories of PNGs]}: the landing page shows the latest PNG of each."""
    galleries = {}
    for d in quicklook_dirs():
        spacecraft = d.split("/")[2]  # results/quicklook/<spacecraft>/<period>
        title = f"{'STEREO-A' if spacecraft == 'stereo_a' else 'STEREO-B'} farside"
        galleries.setdefault(title, []).append(d)
    return galleries


def report_page_inputs(wildcards):
    inputs = {"manifest": "data/manifest.csv", "losses": "results/model/losses.csv",
              "maps": [d for dirs in report_galleries().values() for d in dirs]}
    if comparisons():
        inputs["summary"] = "results/evaluation/summary.csv"
    return inputs


def report_page_commands(wildcards, input, output):
    command = ["report-page", "--manifest", input.manifest, "--losses", input.losses,
               "--out-dir", str(Path(output.page).parent)]
    if "summary" in input.keys():
        command += ["--summary", input.summary]
    for title, dirs in report_galleries().items():
        for d in dirs:
            command += ["--gallery", title, d]
    return [command]


rule report_page:
    input:
        unpack(report_page_inputs),
    output:
        page="results/report/page.rst",
        losses=report("results/report/losses.png", category="Training",
                      caption="../report/losses_figure.rst"),
    log:
        "logs/report_page.log",
    params:
        commands=report_page_commands,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    script:
        "../scripts/farside_gan_cli.py"
