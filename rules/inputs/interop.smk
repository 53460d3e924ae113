# Input functions and params of rules/interop.smk (Snakemake keeps functions out of rule files).

def get_external(wildcards):
    return external_of(config, f"ext-{wildcards.name}")


def get_external_store(wildcards):
    """What the imported SAE encodes: the embeddings store (clip level) or the frame store (frame level)."""
    if get_external(wildcards)["level"] == "frame":
        return layout.FRAMES.format(model=wildcards.model)
    return layout.EMBEDDINGS.format(model=wildcards.model)


def sae_exports(wildcards=None):
    """The export/ folder of every SAE trained in this study on a trained model (a random-weights twin's SAEs are
    a control, not something to share)."""
    clip = [(m, l, r) for m, l in nodes() if not is_twin_name(m) for r in CLIP_REPS]
    frame = [(m, l, r) for m, l in frame_nodes() if not is_twin_name(m) for r in FRAME_REPS]
    return [f"{layout.sae_dir(m, l, r)}/export" for m, l, r in clip + frame]


def get_export_inputs(wildcards):
    """An SAE's own files, its probes (every target) and its atlas page: what its model card reports."""
    rep = Rep.parse(f"{wildcards.kind}{wildcards.sparsity}")
    base = layout.sae_dir(wildcards.model, wildcards.layer, rep)
    out = {"weights": f"{base}/sae.safetensors", "config": f"{base}/config.json", "metrics": f"{base}/metrics.json",
           "probes": [layout.probe_path(t, wildcards.model, wildcards.layer, rep) for t in TARGETS]}
    if "atlas" in REPORT_SECTIONS:
        out["atlas"] = layout.ATLAS.format(model=wildcards.model, layer=wildcards.layer, rep=rep)
    return out
