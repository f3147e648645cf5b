# Evaluate: near-side predictions against HMI; with a synthetic archive also near and far side
# against the synthetic Sun's own field on each map's grid (`truth`; real data has no farside
# truth, so that rule is absent there). CC at full resolution and binned to the published
# 8x8-at-1024-px area, active-region/quiet-Sun CC, flux ratios, leading polarity; tables and
# plots that `snakemake --report` collects. Quicklooks: one PNG per farside map.


rule truth:
    input:
        sun="data/archive",
        prepared=lambda wildcards: prepared_dir(INSTRUMENT_OF_OBSERVER[wildcards.observer],
                                                wildcards.period),
    output:
        directory("results/truth/{observer}/{period}"),
    log:
        "logs/truth/{observer}/{period}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan synth-truth --sun {input.sun} --prepared {input.prepared}"
        " --out-dir {output} > {log} 2>&1"


rule evaluate:
    input:
        evaluate_inputs,
    output:
        metrics=report("results/evaluation/metrics.csv", category="Evaluation",
                       caption="../report/metrics.rst"),
        summary=report("results/evaluation/summary.csv", category="Evaluation",
                       caption="../report/summary.rst"),
        # each region's leading polarity, once per passage (a synthetic archive; else a header)
        regions="results/evaluation/regions.csv",
        scatter=report("results/evaluation/scatter.png", category="Evaluation",
                       caption="../report/scatter.rst"),
        flux=report("results/evaluation/flux.png", category="Evaluation",
                    caption="../report/flux.rst"),
        maps=report(directory("results/evaluation/maps"), patterns=["{name}.png"],
                    category="Maps", caption="../report/maps.rst"),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/out/evaluate.tsv"
    params:
        out_dir=lambda wildcards, output: quoted(Path(output.metrics).parent),
        comparisons=evaluate_comparisons,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan evaluate --out-dir {params.out_dir} {params.comparisons}"
        " > {log:q} 2>&1"


rule quicklook:
    input:
        "results/farside/{spacecraft}/{period}",
    output:
        report(directory("results/quicklook/{spacecraft}/{period}"), patterns=["{name}.png"],
               category="Farside", subcategory="{spacecraft}", caption="../report/farside.rst"),
    log:
        "logs/quicklook/{spacecraft}/{period}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan quicklook --out-dir {output} {input} > {log} 2>&1"
