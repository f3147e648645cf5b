# Whole-Sun products: one synchronic Carrington map per farside time (the observed HMI
# magnetogram on the near side, the generated STEREO-A/-B maps on the far side; `farside-gan
# synchronic`), one job per period, and the per-pixel uncertainty of the generated maps: with
# synchronic.ensemble_members N >= 2 the predict jobs run N generators (generator.pt and the
# N - 1 latest checkpoints/epoch_NNNN.pt training kept) and write their spread as each map's
# UNCERTAINTY extension, which the synchronic map carries on, times the factor that calibrates
# it on the near side (calibrate_uncertainty: evaluation months against HMI; the snapshot
# ensemble alone is overconfident). Helpers: common.smk.

rule synchronic:
    input:
        unpack(synchronic_inputs),
    output:
        maps=directory("results/synchronic/{period}"),
        plots=report(directory("results/quicklook/synchronic/{period}"), patterns=["{name}.png"],
                     category="Synchronic", caption="../report/synchronic.rst"),
        uncertainty=report(directory("results/quicklook/uncertainty/{period}"),
                           patterns=["{name}.png"], category="Uncertainty",
                           caption="../report/synchronic.rst"),
    log:
        "logs/synchronic/{period}.log",
    benchmark:
        "benchmarks/out/synchronic/{period}.tsv"
    params:
        grid=synchronic_grid(),
        weight_power=quoted(SYNCHRONIC["weight_power"]),
        sources=synchronic_sources,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan synchronic --out-dir {output.maps:q} --png-dir {output.plots:q}"
        " --uncertainty-png-dir {output.uncertainty:q} {params.grid}"
        " --weight-power {params.weight_power} {params.sources} > {log:q} 2>&1"


rule calibrate_uncertainty:
    input:
        unpack(calibration_pairs),
    output:
        UNCERTAINTY_CALIBRATION,
    log:
        "logs/calibrate_uncertainty.log",
    params:
        # fitted on the synchronic maps' grid, where it is applied
        grid=synchronic_grid(),
        pairs=calibration_pair_args,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan calibrate-uncertainty --out {output:q} {params.grid}"
        " {params.pairs} > {log:q} 2>&1"
