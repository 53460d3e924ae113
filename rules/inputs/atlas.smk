# Input functions and params of rules/atlas.smk (Snakemake keeps functions out of rule files).

def get_atlas_store(wildcards):
    """The store of an atlas's representation; a node or rep outside this study is an error naming it."""
    if (wildcards.model, int(wildcards.layer)) not in nodes():
        raise ConfigError(f"atlas for {wildcards.model} layer {wildcards.layer}: that layer is not analysed in this "
                          f"study (nodes: {', '.join(f'{m} layer {l}' for m, l in nodes())})")
    if Rep.parse(wildcards.rep) not in reps_of(wildcards.model, int(wildcards.layer)):
        raise ConfigError(f"atlas for rep {wildcards.rep!r} of {wildcards.model} layer {wildcards.layer}: no such "
                          f"representation in this study (reps: {', '.join(map(str, REPS))}); add its sparsity to "
                          f"sae.sparsities")
    return get_rep_store(wildcards)


def get_atlas_frames(wildcards):
    """A frame SAE's atlas also reads its frame store and weights (activation traces); others nothing."""
    rep = Rep.parse(wildcards.rep)
    if rep.kind != "fsae":
        return []
    return [layout.FRAMES.format(model=wildcards.model),
            f"{layout.sae_dir(wildcards.model, wildcards.layer, rep)}/sae.safetensors"]


def get_atlas_stability(wildcards):
    """The node's stability file when this rep is the default seed of a seed group (its cards show recurrence)."""
    rep = Rep.parse(wildcards.rep)
    seeded = {(r.level, r.sparsity) for r in seed_reps_of(wildcards.model, int(wildcards.layer))}
    return [layout.stability_path(wildcards.model, wildcards.layer)] if (rep.level, rep.sparsity) in seeded else []


def get_atlas_rank_array(wildcards):
    """Frame SAEs rank an atlas's clips by their highest frame activation in the crop (codes_max)."""
    if Rep.parse(wildcards.rep).kind != "fsae":
        return ""
    return "codes_max" if FRAME_SAE_SETTINGS.pooling == "mean" else "codes"


def get_atlas_params(wildcards=None):
    """atlas.* settings that change a page or units.csv."""
    keys = ("auroc_threshold", "rho_threshold", "top_clips", "median_clips", "histogram_bins", "ridge_folds")
    return {k: config["atlas"][k] for k in keys}


def atlas_dirs(wildcards=None):
    """Every atlas page folder: one per (model, layer, rep)."""
    return [layout.atlas_dir(m, l, r) for m, l, r in node_reps()]


def ablation_results(wildcards=None):
    """One ablation JSON per node with clip-level SAEs (none without them)."""
    return [layout.ablation_path(m, l) for m, l in nodes()] if CLIP_LEVEL else []


def get_ablation_sae_dirs(wildcards):
    """{rep: SAE folder} of the node's clip-level SAEs: the ablation reads each folder's weights and latents."""
    return {str(r): layout.sae_dir(wildcards.model, wildcards.layer, r) for r in CLIP_REPS}


def get_ablation_saes(wildcards):
    return [f"{d}/{f}" for d in get_ablation_sae_dirs(wildcards).values() for f in ("sae.safetensors", "latents.zarr")]
