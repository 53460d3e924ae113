# Stage: sae. One sparse autoencoder per (model, layer, sparsity), trained on the
# cached layer vectors of the embeddings store (no encoder runs here).

include: "inputs/sae.smk"


rule train_sae:
    input:
        store=layout.EMBEDDINGS,
    output:
        weights=f"{layout.SAE_DIR['clip']}/sae.safetensors",
        config=f"{layout.SAE_DIR['clip']}/config.json",
        metrics=f"{layout.SAE_DIR['clip']}/metrics.json",
        latents=directory(f"{layout.SAE_DIR['clip']}/latents.zarr"),
    params:
        sae=get_sae_params,
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    # Small-batch SAE steps are bound by per-operation overhead: extra intra-op threads
    # buy little and slow badly when jobs share cores; run more jobs instead.
    threads: 1
    log:
        "results/logs/train_sae/{model}/layer{layer}/sparsity{sparsity}.log",
    benchmark:
        "results/benchmarks/rules/train_sae/{model}/layer{layer}/sparsity{sparsity}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_sae.py"


# The same SAE with an extra seed (controls.seeds, at controls.seed_sparsities): rep sae<s>-seed<n>.
rule train_sae_seed:
    input:
        store=layout.EMBEDDINGS,
    output:
        weights=f"{layout.SEED_SAE_DIR['clip']}/sae.safetensors",
        config=f"{layout.SEED_SAE_DIR['clip']}/config.json",
        metrics=f"{layout.SEED_SAE_DIR['clip']}/metrics.json",
        latents=directory(f"{layout.SEED_SAE_DIR['clip']}/latents.zarr"),
    params:
        sae=get_sae_seed_params,
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    threads: 1
    log:
        "results/logs/train_sae/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.log",
    benchmark:
        "results/benchmarks/rules/train_sae/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_sae.py"
