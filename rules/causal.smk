# Stage: causal atlas. Per node, in the network itself (the splice mechanism, each SAE's error term kept):
# concept erasure curves of its SAEs at causal.sparsity, and steering of the top labelled cards of its atlas
# pages, each card getting a badge (causal / not causal / untestable) that its atlas page shows
# (audiosae.causal; docs/atlas.md, "Is a label causal?").

include: "inputs/causal.smk"


rule causal:
    input:
        manifest=layout.MANIFEST,
        attributes=layout.ATTRIBUTES,
        corpus=get_corpus_root(),
        embeddings=layout.EMBEDDINGS,
        frames=get_causal_frames,
        saes=get_causal_saes,
        weights=get_model_weights,
    output:
        layout.CAUSAL,
    params:
        model=get_model_params,
        reps=get_causal_rep_specs,  # {rep, level, store, array, dir}: each representation named
        targets=config["probe"]["targets"],
        split=get_split_params(),
        audio=get_audio_params(),
        atlas=get_atlas_params(),  # the cards' labels are the atlas's own (same statistic, same thresholds)
        causal=get_causal_params(),
        device=config["extraction"]["device"],
        dtype=config["extraction"]["dtype"],
        batch_size=get_extraction_batch_size,
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/causal/{model}/layer{layer}.log",
    benchmark:
        "results/benchmarks/rules/causal/{model}/layer{layer}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/causal.py"


# The section's tables, figures and captions, as registered in audiosae.report.registry (CAUSAL).
if "causal" in REPORT_SECTIONS:

    localrules:
        causal_report,  # tables and a figure from the nodes' small JSON files

    rule causal_report:
        input:
            causal=causal_results,
        output:
            csv=section_table_outputs("causal"),
            md=section_tables("causal", "md"),
            png=section_figure_outputs("causal"),
            pdf=section_figures("causal", "pdf"),
            captions=section_captions("causal"),
        params:
            section="causal",
        log:
            "results/logs/causal_report.log",
        conda:
            "../envs/report.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../workflow_scripts/report_section.py"
