# Stage: embeddings. The only stage that runs foundation models: one job per
# model, all hidden states in one forward pass, into results/embeddings/{model}.zarr.
# Hugging Face weights are fetched once by download_model (the only rule here
# that uses the network, so a local rule); extraction loads them offline.

include: "inputs/embeddings.smk"


# A checkpoint: `layers: all` (or a negative index) on a Hugging Face model is
# resolved against the depth in the downloaded config.json, so the DAG is
# re-evaluated once the snapshot is there.
checkpoint download_model:
    output:
        directory("resources/models/{model}"),
    params:
        repo_id=get_model_repo_id,
        revision=get_model_revision,
    localrule: True
    cache: "omit-software"
    log:
        "results/logs/download_model/{model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/download_model.py"


rule extract_embeddings:
    input:
        manifest=layout.MANIFEST,
        weights=get_model_weights,
    output:
        directory(layout.EMBEDDINGS),
    params:
        model=get_model_params,
        audio=get_audio_params,
        batch_size=get_extraction_batch_size,
        device=config["extraction"]["device"],
        dtype=config["extraction"]["dtype"],
    threads: 8  # capped by --cores; CPU extraction uses them all, GPU extraction needs few
    priority: 10  # most of the DAG waits on it
    resources:
        gpu=1,
        mem_mb=get_extraction_mem_mb,
        runtime=get_extraction_runtime,
    # No `benchmark:`: Snakemake refuses it on rules eligible for the output cache
    # (a cached result has no run to time). Wall time, items/s, device and peak GPU
    # memory are in the store's attrs instead.
    cache: "omit-software"
    log:
        "results/logs/extract_embeddings/{model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/extract_embeddings.py"
