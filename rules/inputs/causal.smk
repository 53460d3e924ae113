# Input functions and params of rules/causal.smk (Snakemake keeps functions out of rule files).


def causal_sparsity():
    """The sparsity whose SAEs the causal jobs test: causal.sparsity, or the largest that every SAE level has."""
    s = config["causal"]["sparsity"]
    if s is not None:
        s = layout.sparsity_str(s)
        if s not in SPARSITIES:
            raise ConfigError(f"config key 'causal.sparsity': {s} is not one of sae.sparsities ({', '.join(SPARSITIES)})")
        return s
    shared = [x for x in SPARSITIES if not FRAME_LEVEL or x in FRAME_SPARSITIES]
    return max(shared or SPARSITIES, key=float)


def causal_reps(model, layer):
    """What a node's causal job tests: the layer's own units, its clip SAE and (frame layers) its frame SAE at
    causal_sparsity(); the default seed only."""
    s = causal_sparsity()
    reps = [Rep()]
    if CLIP_LEVEL:
        reps.append(Rep.sae(s, "clip"))
    if FRAME_LEVEL and is_frame_layer(model, layer) and s in FRAME_SPARSITIES:
        reps.append(Rep.sae(s, "frame"))
    return reps


def causal_results(wildcards=None):
    """One causal JSON per node (none when causal.enabled is false)."""
    return [layout.causal_path(m, l) for m, l in nodes()] if config["causal"]["enabled"] else []


def get_causal_saes(wildcards):
    """Weights and codes of each SAE a node's causal job tests."""
    out = []
    for r in causal_reps(wildcards.model, int(wildcards.layer)):
        if not r.is_original:
            d = layout.sae_dir(wildcards.model, wildcards.layer, r)
            out += [f"{d}/sae.safetensors", f"{d}/latents.zarr"]
    return out


def get_causal_frames(wildcards):
    """The frame store, where a frame SAE is tested (its latents' step α is measured on train frames)."""
    reps = causal_reps(wildcards.model, int(wildcards.layer))
    return [layout.FRAMES.format(model=wildcards.model)] if any(r.level == "frame" for r in reps) else []


def get_causal_rep_specs(wildcards):
    """[{rep, level, store, array, dir}] of the node's tested representations (each named, never by position)."""
    m, l = wildcards.model, int(wildcards.layer)
    return [{"rep": str(r), "level": r.level, "store": layout.rep_store(m, l, r), "array": layout.rep_array(l, r),
             "dir": None if r.is_original else layout.sae_dir(m, l, r)} for r in causal_reps(m, l)]


def get_causal_params(wildcards=None):
    return {k: v for k, v in config["causal"].items() if k not in ("enabled", "sparsity")}


def get_split_params(wildcards=None):
    return {k: config["data"][k] for k in ("valid_fraction", "test_fraction", "split_seed")}

