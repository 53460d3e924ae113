# Input functions and params of rules/frames.smk (Snakemake keeps functions out of rule files).

from audiosae.sae.settings import FrameSAESettings

FRAME_SAE_SETTINGS = FrameSAESettings.from_config(config["sae"])  # also read by the atlas (its pooling)

def get_frame_layers(wildcards):
    """Hidden states stored in a model's frame store: its analysed frame-resolution layers."""
    return sorted({l for m, l in frame_nodes() if m == wildcards.model})


def get_frames_params(wildcards=None):
    return {k: config["frames"][k] for k in ("window_seconds", "dtype", "chunk_frames")}


def get_frames_batch_size(wildcards):
    return config["frames"]["batch_size"] or get_extraction_batch_size(wildcards)


def get_frame_sae_params(wildcards):
    """sae.* settings of the model (as clip SAEs) plus sae.frame.* training settings (FrameSAESettings)."""
    return {"sparsity": float(wildcards.sparsity), **FRAME_SAE_SETTINGS.as_dict()}


def get_frame_sae_seed_params(wildcards):
    """get_frame_sae_params with the extra seed of rule train_frame_sae_seed."""
    return {**get_frame_sae_params(wildcards), "seed": int(wildcards.seed)}


def get_frame_sae_mem_mb(wildcards):
    """The shuffle buffer and a chunk (float32, twice for the batch copies), plus the SAE and PyTorch."""
    width = get_facts(wildcards.model).layer_widths()
    width = width[int(wildcards.layer)] if width else 1024
    rows = FRAME_SAE_SETTINGS.shuffle_buffer + config["frames"]["chunk_frames"]
    return 3000 + int(2 * rows * width * 4 / 2**20)


def get_frame_rep_input(wildcards):
    """What frame_acoustics correlates: the frame store (original), a frame SAE's test frame codes, or those of a
    frame-level imported SAE (sae.external; rule external_frame_latents)."""
    rep = Rep.parse(wildcards.rep)
    level = external_of(config, str(rep))["level"] if rep.kind == "ext" else None
    return layout.frame_rep_store(wildcards.model, wildcards.layer, rep, ext_level=level)


def frame_acoustics_reps(model, layer):
    """The frame-level representations of a frame node: its own dimensions, each frame SAE, each frame-level
    imported SAE."""
    return [Rep()] + FRAME_REPS + [Rep.parse(r) for r in external_reps(config, model, layer, level="frame")]


def frame_acoustics_results(wildcards=None):
    """Acoustics over time of each frame node's frame-level representations."""
    return [layout.frame_acoustics_path(m, l, r) for m, l in frame_nodes() for r in frame_acoustics_reps(m, l)]
