# Input functions and params of rules/interop.smk (Snakemake keeps functions out of rule files).

def get_external(wildcards):
    return external_of(config, f"ext-{wildcards.name}")


def external_names_pattern(level):
    """The `name` wildcard of one level's imported SAEs: exactly their sae.external names (never matching with
    none)."""
    import re

    names = [e["name"] for e in config["sae"]["external"] if e["level"] == level]
    return "|".join(re.escape(n) for n in names) or "(?!)"


def get_external_store(wildcards):
    """What the imported SAE encodes: the embeddings store (clip level) or the frame store (frame level)."""
    if get_external(wildcards)["level"] == "frame":
        return layout.FRAMES.format(model=wildcards.model)
    return layout.EMBEDDINGS.format(model=wildcards.model)


def sae_exports(wildcards=None):
    """The export/ folder of every SAE trained in this study on a trained model, every level and seed (a
    random-weights twin's SAEs are a control, not something to share)."""
    clip = [(m, l, r) for m, l in nodes() if not is_twin_name(m) for r in CLIP_REPS]
    frame = [(m, l, r) for m, l in frame_nodes() if not is_twin_name(m) for r in FRAME_REPS]
    seeds = [(m, l, r) for m, l, r in seed_node_reps() if not is_twin_name(m)]
    return [layout.export_dir(m, l, r) for m, l, r in clip + frame + seeds]


def get_export_rep(wildcards):
    """The rep of an export job: its kind and sparsity, and the extra seed of rule export_sae_seed."""
    return Rep(wildcards.kind, wildcards.sparsity, wildcards.get("seed"))


def get_export_inputs(wildcards):
    """What an SAE's model card reports: its own files, its probes (every target), the store it was trained on
    (whose attrs name the model's weights), its atlas page, and its node's seed stability where measured."""
    rep = get_export_rep(wildcards)
    m, l = wildcards.model, int(wildcards.layer)
    base = layout.sae_dir(m, l, rep)
    out = {"weights": f"{base}/sae.safetensors", "config": f"{base}/config.json", "metrics": f"{base}/metrics.json",
           "probes": [layout.probe_path(t, m, l, rep) for t in TARGETS],
           "store": (layout.FRAMES if rep.level == "frame" else layout.EMBEDDINGS).format(model=m)}
    if "atlas" in REPORT_SECTIONS and rep in reps_of(m, l):  # extra seeds have no atlas page
        out["atlas"] = layout.atlas_dir(m, l, rep)
    if has_seed_group(m, l, rep):
        out["stability"] = layout.stability_path(m, l)
    return out


def seed_node_reps():
    return [(m, l, r) for m, l in nodes() for r in seed_reps_of(m, l)]
