# The report's landing page (`snakemake --report report.html`): workflow/report/workflow.rst
# states the configuration and includes results/report/page.rst, which report_page writes from
# what the run produced (the manifest's counts and drops, the evaluation summary as a table, the
# loss curves, the latest map of each gallery; `farside-gan report-page`).
#
# Hook for more maps (synchronic, uncertainty): add their PNG directories to report_galleries()
# (rules/common.smk), and mark the PNGs in their own rule with report(..., category="Synchronic")
# or category="Uncertainty"; workflow.rst links any category the report has.


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
