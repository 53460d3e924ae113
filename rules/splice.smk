# Stage: splice (docs/splice.md). Per node, every SAE put back into its network in place
# of the layer (frame SAEs frame by frame, clip SAEs through the clip mean), with the
# mean-ablation floor of each level; what the network still computes, as a fraction
# recovered. Then the section's tables, figures and claim.

include: "inputs/splice.smk"


rule splice:
    input:
        unpack(get_splice_inputs),
        manifest=layout.MANIFEST,
        weights=get_model_weights,
        corpus=get_corpus_root(),
    output:
        directory(layout.SPLICE),
    params:
        model=get_model_params,
        reps=get_splice_reps,
        targets=[{"label": t["label"], "split": t["split"]} for t in config["probe"]["targets"]],
        split={k: config["data"][k] for k in ("valid_fraction", "test_fraction", "split_seed")},
        audio=get_audio_params,
        bootstrap={"resamples": config["probe"]["bootstrap"], "ci": config["probe"]["ci"],
                   "seed": config["probe"]["bootstrap_seed"]},
        batch_size=get_splice_batch_size,
        device=config["extraction"]["device"],
        dtype=config["extraction"]["dtype"],
        synthetic=SYNTHETIC,  # the corpus input then holds the true f0 tracks
    threads: 2
    resources:
        gpu=1,
        mem_mb=get_extraction_mem_mb,
        runtime=get_extraction_runtime,
    log:
        "results/logs/splice/{model}/layer{layer}.log",
    benchmark:
        "results/benchmarks/rules/splice/{model}/layer{layer}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/splice.py"


# The splice section of the report (audiosae.report.registry.SPLICE).
if "splice" in REPORT_SECTIONS:

    localrules:
        splice_report,

    rule splice_report:
        input:
            splice=splice_results,
        output:
            csv=section_table_outputs("splice"),
            md=section_tables("splice", "md"),
            png=section_figure_outputs("splice"),
            pdf=section_figures("splice", "pdf"),
            captions=section_captions("splice"),
        params:
            section="splice",
            threshold=SPLICE["recovered_threshold"],
        log:
            "results/logs/splice_report.log",
        benchmark:
            "results/benchmarks/rules/splice_report.tsv"
        conda:
            "../envs/report.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../workflow_scripts/report_section.py"
