# Input functions and params of rules/splice.smk (Snakemake keeps functions out of rule files).


def splice_nodes(wildcards=None):
    """Every node gets a splice job (AST's clip SAEs only: its tokens are not frames)."""
    return nodes() if SPLICE["enabled"] and (CLIP_LEVEL or FRAME_LEVEL) else []


def splice_results(wildcards=None):
    return [layout.splice_dir(m, l) for m, l in splice_nodes()]


def splice_reps_of(model, layer):
    """The SAEs spliced into one node: every clip and frame SAE (every sparsity and seed) and the imported ones."""
    return [r for r in reps_of(model, layer) + seed_reps_of(model, layer) if not r.is_original]


def get_splice_reps(wildcards):
    """[{rep, level, dir | format + path}] of the node."""
    out = []
    for rep in splice_reps_of(wildcards.model, int(wildcards.layer)):
        if rep.kind == "ext":
            ext = external_of(config, str(rep))
            out.append({"rep": str(rep), "level": ext.get("level", "clip"), "format": ext["format"],
                        "path": ext["path"]})
        else:
            out.append({"rep": str(rep), "level": rep.level,
                        "dir": layout.sae_dir(wildcards.model, wildcards.layer, rep)})
    return out


def get_splice_inputs(wildcards):
    """Each SAE's weights (an imported SAE's folder), the embedding store, and the frame store where frame SAEs are
    spliced (its train frame mean is their floor)."""
    out = {"embeddings": layout.EMBEDDINGS.format(model=wildcards.model)}
    saes = []
    for spec in get_splice_reps(wildcards):
        saes.append(spec["path"] if "path" in spec else f"{spec['dir']}/sae.safetensors")
        if spec["level"] == "frame":
            out["frames"] = layout.FRAMES.format(model=wildcards.model)
    out["saes"] = saes
    return out


def get_splice_batch_size(wildcards):
    return SPLICE["batch_size"] or get_extraction_batch_size(wildcards)
