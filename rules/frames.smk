# Stage: frames (only when sae.levels contains frame). Every frame of every
# clip's whole audio for the analysed layers (one store per model), a frame-level
# SAE per (model, layer, sparsity) trained by streaming that store, and the
# acoustics over time: each unit against eGeMAPS low-level descriptors (and the
# true f0 on the synthetic corpus). Frame SAEs' latents.zarr has the embedding
# store's rows, so probe, disentangle and the atlas read them through get_rep_store.

include: "inputs/frames.smk"


rule extract_frames:
    input:
        manifest=layout.MANIFEST,
        weights=get_model_weights,
    output:
        directory(layout.FRAMES),
    params:
        model=get_model_params,
        layers=get_frame_layers,
        audio=get_audio_params,
        frames=get_frames_params(),
        batch_size=get_frames_batch_size,
        device=config["extraction"]["device"],
        dtype=config["extraction"]["dtype"],
    threads: 8  # capped by --cores; CPU extraction uses them all, GPU extraction needs few
    resources:
        gpu=1,
        mem_mb=get_extraction_mem_mb,
        runtime=get_extraction_runtime,
    log:
        "results/logs/extract_frames/{model}.log",
    benchmark:
        "results/benchmarks/rules/extract_frames/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/extract_frames.py"


rule train_frame_sae:
    input:
        store=layout.FRAMES,
    output:
        weights=f"{layout.SAE_DIR['frame']}/sae.safetensors",
        config=f"{layout.SAE_DIR['frame']}/config.json",
        metrics=f"{layout.SAE_DIR['frame']}/metrics.json",
        latents=directory(f"{layout.SAE_DIR['frame']}/latents.zarr"),
        frame_codes=directory(f"{layout.SAE_DIR['frame']}/frame_codes.zarr"),
    params:
        sae=get_frame_sae_params,
    resources:
        gpu=1,
        mem_mb=get_frame_sae_mem_mb,
        runtime=240,
    # Batches of thousands of frames do gain from a second intra-op thread (unlike clip SAEs).
    threads: 2
    log:
        "results/logs/train_frame_sae/{model}/layer{layer}/sparsity{sparsity}.log",
    benchmark:
        "results/benchmarks/rules/train_frame_sae/{model}/layer{layer}/sparsity{sparsity}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_frame_sae.py"


# The same frame SAE with an extra seed (controls.seeds, at controls.seed_sparsities): rep fsae<s>-seed<n>.
rule train_frame_sae_seed:
    input:
        store=layout.FRAMES,
    output:
        weights=f"{layout.SEED_SAE_DIR['frame']}/sae.safetensors",
        config=f"{layout.SEED_SAE_DIR['frame']}/config.json",
        metrics=f"{layout.SEED_SAE_DIR['frame']}/metrics.json",
        latents=directory(f"{layout.SEED_SAE_DIR['frame']}/latents.zarr"),
        frame_codes=directory(f"{layout.SEED_SAE_DIR['frame']}/frame_codes.zarr"),
    params:
        sae=get_frame_sae_seed_params,
    resources:
        gpu=1,
        mem_mb=get_frame_sae_mem_mb,
        runtime=240,
    threads: 2
    log:
        "results/logs/train_frame_sae/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.log",
    benchmark:
        "results/benchmarks/rules/train_frame_sae/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_frame_sae.py"


rule frame_llds:
    input:
        manifest=layout.MANIFEST,
        corpus=get_corpus_root(),
    output:
        directory(layout.FRAME_LLDS),
    params:
        splits=["test"],
    threads: 8
    priority: 5  # every frame_acoustics job waits on it
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/frame_llds.log",
    benchmark:
        "results/benchmarks/rules/frame_llds.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/frame_llds.py"


rule frame_acoustics:
    input:
        frames=get_frame_rep_input,
        llds=layout.FRAME_LLDS,
        manifest=layout.MANIFEST,
        corpus=get_corpus_root(),
    output:
        json=f"{layout.FRAME_ACOUSTICS}.json",
        npz=f"{layout.FRAME_ACOUSTICS}.npz",
    params:
        max_frames=config["frames"]["acoustics_max_frames"],
        seed=config["frames"]["acoustics_seed"],
        synthetic=SYNTHETIC,  # the corpus input then holds the true f0 tracks
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/frame_acoustics/{model}/layer{layer}/{rep}.log",
    benchmark:
        "results/benchmarks/rules/frame_acoustics/{model}/layer{layer}/{rep}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/frame_acoustics.py"


# The frames section of the report (audiosae.report.registry.FRAMES): only with a frame level.
if "frames" in REPORT_SECTIONS:

    rule frame_report:
        input:
            acoustics=frame_acoustics_results,
            core=section_tables("core", "csv"),
            atlas=section_tables("atlas", "csv") if "atlas" in REPORT_SECTIONS else [],
        params:
            section="frames",
            target=PRIMARY_TARGET,  # the levels table's probe accuracy
        output:
            csv=section_table_outputs("frames"),
            md=section_tables("frames", "md"),
            png=section_figure_outputs("frames"),
            pdf=section_figures("frames", "pdf"),
            captions=section_captions("frames"),
        log:
            "results/logs/frame_report.log",
        benchmark:
            "results/benchmarks/rules/frame_report.tsv"
        conda:
            "../envs/report.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../workflow_scripts/report_section.py"
