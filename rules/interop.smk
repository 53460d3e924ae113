# Stage: interop (issue 20, docs/interop.md). Every SAE trained here also gets an export/
# folder that SAELens loads (cfg.json + sae_weights.safetensors, our input normalisation
# and pre-bias folded in) with a model card; every SAE of sae.external (trained with
# SAELens, sparsify or dictionary_learning) encodes its node's vectors into
# results/ext/{model}/layer{layer}/{name}/latents.zarr, the layout our SAEs write, so
# the probe, disentangle, atlas and report stages analyse it as rep ext-<name>.

from audiosae.interop.external import external_of


def external_dirs(wildcards=None):
    """results/ext/<model>/layer<L>/<name> of every sae.external entry."""
    return [f"results/ext/{e['model']}/layer{e['layer']}/{e['name']}" for e in config["sae"]["external"]]


def get_external(wildcards):
    return external_of(config, f"ext-{wildcards.name}")


def get_external_store(wildcards):
    """What the external SAE encodes: the embeddings store (clip level) or the frame store (frame level)."""
    if get_external(wildcards)["level"] == "frame":
        return f"results/frames/{wildcards.model}.zarr"
    return f"results/embeddings/{wildcards.model}.zarr"


def sae_exports(wildcards=None):
    """The export/ folder of every SAE trained in this study."""
    return [f"{d}/export" for d in sae_dirs()]


def get_export_inputs(wildcards):
    """An SAE's own files, its probes (every target) and its atlas summary: what its model card reports."""
    base = f"results/{wildcards.kind}/{wildcards.model}/layer{wildcards.layer}/sparsity{wildcards.sparsity}"
    rep = f"{wildcards.kind}{wildcards.sparsity}"
    out = {"weights": f"{base}/sae.safetensors", "config": f"{base}/config.json", "metrics": f"{base}/metrics.json",
           "probes": [f"results/probe/{t}/{wildcards.model}/layer{wildcards.layer}/{rep}.json" for t in TARGETS]}
    if "atlas" in REPORT_SECTIONS:
        out["atlas"] = f"results/atlas/{wildcards.model}/layer{wildcards.layer}/{rep}"
    return out


rule external_latents:
    input:
        store=get_external_store,
        sae=lambda w: get_external(w)["path"],
    output:
        latents=directory("results/ext/{model}/layer{layer}/{name}/latents.zarr"),
        metrics="results/ext/{model}/layer{layer}/{name}/metrics.json",
    wildcard_constraints:
        name=r"[A-Za-z0-9][A-Za-z0-9_]*",
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


rule export_sae:
    input:
        unpack(get_export_inputs),
    output:
        directory("results/{kind}/{model}/layer{layer}/sparsity{sparsity}/export"),
    wildcard_constraints:
        kind="f?sae",
    params:
        model_spec=lambda w: MODELS[w.model],
        corpus=CORPUS,
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
