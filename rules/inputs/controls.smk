# Input functions and params of rules/controls.smk (Snakemake keeps functions out of rule files).

def seed_groups(model, layer):
    """The node's seed groups: one per (level, seed sparsity), with every seed's SAE (the default seed first)."""
    groups = {}
    for rep in seed_reps_of(model, layer):
        default = Rep.sae(rep.sparsity, rep.level)
        g = groups.setdefault((rep.level, rep.sparsity), {"level": rep.level, "sparsity": rep.sparsity,
                                                          "reps": {int(config["sae"]["seed"]): default}})
        g["reps"][rep.seed] = rep
    return list(groups.values())


def stability_nodes(wildcards=None):
    """Every node with SAEs of several seeds."""
    return [(m, l) for m, l in nodes() if seed_reps_of(m, l)]


def stability_results(wildcards=None):
    return [layout.stability_path(m, l) for m, l in stability_nodes()]


def get_stability_groups(wildcards):
    """[{level, sparsity, dirs: {seed: SAE folder}, probes: {seed: {target: probe JSON}}}] of one node."""
    m, l = wildcards.model, int(wildcards.layer)
    return [{"level": g["level"], "sparsity": g["sparsity"],
             "dirs": {s: layout.sae_dir(m, l, r) for s, r in g["reps"].items()},
             "probes": {s: {t: layout.probe_path(t, m, l, r) for t in TARGETS} for s, r in g["reps"].items()}}
            for g in seed_groups(m, l)]


def get_stability_inputs(wildcards):
    """Every seed's SAE weights, latents and metrics, and its probes."""
    out = []
    for g in get_stability_groups(wildcards):
        out += [f"{d}/{f}" for d in g["dirs"].values() for f in ("sae.safetensors", "latents.zarr", "metrics.json")]
        out += [p for probes in g["probes"].values() for p in probes.values()]
    return out


def sparse_probe_reps(model, layer):
    """What k-sparse probing compares on one node: the layer's own dimensions and its clip SAEs, every seed (the
    extra seeds give the k-sparse claim its spread over seeds)."""
    return [Rep()] + CLIP_REPS + [r for r in seed_reps_of(model, layer) if r.level == "clip"]


def sparse_probe_results(wildcards=None):
    return [layout.sparse_probe_path(m, l) for m, l in nodes()] if CONTROLS["sparse_probing"] else []


def get_sparse_probe_stores(wildcards):
    """{rep: store} of the node's representations that k-sparse probing compares."""
    return {str(r): layout.rep_store(wildcards.model, wildcards.layer, r)
            for r in sparse_probe_reps(wildcards.model, wildcards.layer)}
