# Evaluate the near-side predictions against HMI (the aligned magnetograms, in Gauss): CC at
# full resolution and after 8x8 binning, active-region/quiet-Sun split, flux, RMSE; a table and
# plots that `snakemake --report` collects.


rule evaluate:
    input:
        predictions=lambda wildcards: [f"results/nearside/{t}.fits" for t in eval_times(wildcards)],
        targets=lambda wildcards: [f"data/aligned/hmi/magnetogram/{t}.fits" for t in eval_times(wildcards)],
    output:
        metrics=report("results/evaluation/metrics.csv", category="Evaluation",
                       caption="../report/metrics.rst"),
        summary=report("results/evaluation/summary.csv", category="Evaluation",
                       caption="../report/summary.rst"),
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
        out_dir=lambda wildcards, output: str(Path(output.metrics).parent),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan evaluate --predictions {input.predictions} --targets {input.targets}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule quicklook:
    input:
        "results/farside/{spacecraft}/{time}.fits",
    output:
        report("results/farside/{spacecraft}/{time}.png", category="Farside",
               subcategory="{spacecraft}", caption="../report/farside.rst"),
    log:
        "logs/quicklook/{spacecraft}/{time}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan quicklook {input} {output} > {log} 2>&1"
