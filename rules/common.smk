# Target lists, input functions and wildcard constraints shared by every stage.
# Rule files never read `config` inside a script: what changes a result reaches
# its job as a param (built here) or an input file.

import json
from pathlib import Path

from audiosae.config import ConfigError, resolve_layers, static_layer_widths


MODELS = config["models"]
SPARSITIES = [str(s) for s in config["sae"]["sparsities"]]
REPS = ["original"] + [f"sae{s}" for s in SPARSITIES]
SYNTHETIC = config["data"]["corpus"] == "synthetic"


# ---------------------------------------------------------------- data


def get_corpus_root():
    """Folder holding the corpus's WAVs in VocalSet's layout."""
    return "resources/synthetic" if SYNTHETIC else "resources/VocalSet"


# ---------------------------------------------------------------- models and layers


def hf_depth(model):
    """Hidden states of a downloaded Hugging Face model (its config.json), or None."""
    cfg = Path("resources/models") / model / "config.json"
    if not cfg.exists():
        return None
    data = json.loads(cfg.read_text())
    n = data.get("num_hidden_layers")
    return None if n is None else n + 1


def get_layers(model):
    """Hidden-state indices analysed for `model`, as non-negative ints."""
    spec = MODELS[model]["layers"]
    widths = static_layer_widths(MODELS[model])
    if widths is not None:
        return resolve_layers(model, spec, len(widths))
    depth = hf_depth(model)
    if depth is not None:
        return resolve_layers(model, spec, depth)
    if spec == "all" or any(l < 0 for l in spec):
        raise ConfigError(
            f"config key 'models.{model}.layers': 'all' and negative layers need the model's depth; "
            f"run `snakemake download_model_{model}` first (or list non-negative layers)"
        )
    return sorted(set(spec))


def get_model_params(wildcards):
    """Everything about a model that changes its embeddings (layers excluded: all are stored)."""
    cfg = {k: v for k, v in MODELS[wildcards.model].items() if k not in ("layers", "batch_size")}
    return cfg


def get_model_weights(wildcards):
    """Downloaded weights folder for Hugging Face models; packaged models need none."""
    if MODELS[wildcards.model]["source"] == "hf":
        return f"resources/models/{wildcards.model}"
    return []


def get_extraction_batch_size(wildcards):
    return MODELS[wildcards.model].get("batch_size", config["extraction"]["batch_size"])


def get_audio_params(wildcards=None):
    return {
        "crop_seconds": config["audio"]["crop_seconds"],
        "train_crops": config["audio"]["train_crops"],
        "crop_seed": config["audio"]["crop_seed"],
    }


# ---------------------------------------------------------------- SAE codes and representations


def get_rep_store(wildcards):
    """The store that holds representation `rep` of (model, layer)."""
    if wildcards.rep == "original":
        return f"results/embeddings/{wildcards.model}.zarr"
    s = wildcards.rep[len("sae"):]
    return f"results/sae/{wildcards.model}/layer{wildcards.layer}/sparsity{s}/latents.zarr"


def get_rep_array(wildcards):
    """Name of the array inside get_rep_store's store."""
    return f"layer{wildcards.layer}" if wildcards.rep == "original" else "codes"


# ---------------------------------------------------------------- target lists


def nodes():
    """Every analysed (model, layer) pair."""
    return [(m, l) for m in MODELS for l in get_layers(m)]


def sae_dirs():
    return [f"results/sae/{m}/layer{l}/sparsity{s}" for m, l in nodes() for s in SPARSITIES]


def sae_metrics():
    return [f"{d}/metrics.json" for d in sae_dirs()]


def probe_results():
    return [f"results/probe/{m}/layer{l}/{r}.json" for m, l in nodes() for r in REPS]


def disentangle_results():
    return [f"results/disentangle/{m}/layer{l}/{r}.json" for m, l in nodes() for r in REPS]


def embedding_stores():
    return [f"results/embeddings/{m}.zarr" for m in MODELS]
