# Stage: interop (issue 20, docs/interop.md). Every SAE trained here also gets an export/
# folder that SAELens loads (cfg.json + sae_weights.safetensors, our input normalisation
# and pre-bias folded in) with a model card; every SAE of sae.external (trained with
# SAELens, sparsify or dictionary_learning) encodes its node's vectors into
# results/ext/{model}/layer{layer}/{name}/latents.zarr, the layout our SAEs write, so
# the probe, disentangle, atlas and report stages analyse it as rep ext-<name>.

include: "inputs/interop.smk"


# An imported clip-level SAE; its frame-level twin rule below also writes the test frames' codes. The name
# wildcard is constrained to each level's sae.external names, so each ext folder has one rule.
rule external_latents:
    input:
        store=get_external_store,
        sae=lambda w: get_external(w)["path"],
    output:
        latents=directory(f"{layout.EXT_DIR}/latents.zarr"),
        metrics=f"{layout.EXT_DIR}/metrics.json",
    wildcard_constraints:
        name=external_names_pattern("clip"),
    params:
        format=lambda w: get_external(w)["format"],
        level=lambda w: get_external(w)["level"],
        pooling=config["sae"]["frame"]["pooling"],
        device=config["sae"]["device"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/external_latents/{model}/layer{layer}/{name}.log",
    benchmark:
        "results/benchmarks/rules/external_latents/{model}/layer{layer}/{name}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/external_latents.py"


use rule external_latents as external_frame_latents with:
    output:
        latents=directory(f"{layout.EXT_DIR}/latents.zarr"),
        frame_codes=directory(f"{layout.EXT_DIR}/frame_codes.zarr"),
        metrics=f"{layout.EXT_DIR}/metrics.json",
    wildcard_constraints:
        name=external_names_pattern("frame"),


# An SAE's export folder: every level (the {kind} wildcard is the rep kind, sae or fsae) and, with
# export_sae_seed, every extra seed (controls.seeds).
rule export_sae:
    input:
        unpack(get_export_inputs),
    output:
        directory(layout.SAE_EXPORT),
    wildcard_constraints:
        kind="f?sae",
    params:
        rep=lambda w: str(get_export_rep(w)),
        model_spec=lambda w: MODELS[w.model],
        corpus=corpus_description(config["data"]),  # the model card's corpus row names the file or source
        pooling=config["sae"]["frame"]["pooling"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "results/logs/export_sae/{kind}/{model}/layer{layer}/sparsity{sparsity}.log",
    benchmark:
        "results/benchmarks/rules/export_sae/{kind}/{model}/layer{layer}/sparsity{sparsity}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/export_sae.py"


use rule export_sae as export_sae_seed with:
    output:
        directory(layout.SEED_SAE_EXPORT),
    log:
        "results/logs/export_sae/{kind}/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.log",
    benchmark:
        "results/benchmarks/rules/export_sae/{kind}/{model}/layer{layer}/sparsity{sparsity}-seed{seed}.tsv"
