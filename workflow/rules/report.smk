# The report's landing page (`snakemake --report report.html`): workflow/report/workflow.rst
# states the configuration and includes results/report/page.rst, which report_page writes from
# what the run produced (the manifest's counts and drops, the evaluation summary as a table, the
# loss curves, the latest map of each gallery; `farside-gan report-page`).
#
# The galleries (report_galleries() in rules/common.smk): each spacecraft's farside quicklooks,
# the synchronic maps and, with an ensemble, their uncertainty; their PNGs are also in the
# report's categories (report(..., category=...) in their own rules).


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
        out_dir=lambda wildcards, output: quoted(Path(output.page).parent),
        sources=report_page_sources,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan report-page --manifest {input.manifest:q}"
        " --losses {input.losses:q} --out-dir {params.out_dir} {params.sources} > {log:q} 2>&1"
