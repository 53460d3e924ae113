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
    if has_seed_group(wildcards.model, int(wildcards.layer), wildcards.rep):
        return [layout.stability_path(wildcards.model, wildcards.layer)]
    return []


def get_atlas_causal(wildcards):
    """The node's causal JSON (rules/causal.smk) when this page's rep is one the causal job tests (its cards get a badge)."""
    if not config["causal"]["enabled"]:
        return []
    m, l = wildcards.model, int(wildcards.layer)
    if (m, l) not in nodes() or Rep.parse(wildcards.rep) not in causal_reps(m, l):
        return []
    return [layout.causal_path(m, l)]


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


def ablation_reps(model, layer):
    """What the ablation test decodes on one node: its clip-level SAEs and its clip-level imported SAEs (frame-level
    ones' codes are pooled over frames, so their decoder is not a map of them)."""
    return CLIP_REPS + [Rep.parse(r) for r in external_reps(config, model, layer, level="clip")]


def ablation_results(wildcards=None):
    """One ablation JSON per node with a clip-level SAE of its own or imported (none without them)."""
    return [layout.ablation_path(m, l) for m, l in nodes() if ablation_reps(m, l)]


def get_ablation_sae_dirs(wildcards):
    """{rep: folder} of the node's ablated SAEs: each folder's latents.zarr holds the codes (ours: beside its weights)."""
    return {str(r): layout.ext_dir(wildcards.model, wildcards.layer, r) if r.kind == "ext"
            else layout.sae_dir(wildcards.model, wildcards.layer, r)
            for r in ablation_reps(wildcards.model, wildcards.layer)}


def get_ablation_external(wildcards):
    """{rep: {format, path}} of the node's imported SAEs among them: decoded by their format's reader."""
    out = {}
    for r in ablation_reps(wildcards.model, wildcards.layer):
        if r.kind == "ext":
            ext = external_of(config, str(r))
            out[str(r)] = {"format": ext["format"], "path": str(ext["path"])}
    return out


def get_ablation_saes(wildcards):
    """Each ablated SAE's codes and weights (an imported SAE's folder, as sae.external gives it)."""
    external = get_ablation_external(wildcards)
    out = []
    for rep, d in get_ablation_sae_dirs(wildcards).items():
        out += [f"{d}/latents.zarr", external[rep]["path"] if rep in external else f"{d}/sae.safetensors"]
    return out
