# Models and layers, shared by the embeddings and frames stages and by the node lists of rules/common.smk:
# where a model's weights live, what its encoder module knows (widths, depth, resources), which layers are
# analysed, and the settings that change its embeddings.


def get_weights_dir(model):
    """Where download_model puts a model's snapshot (None for packaged models); a twin reads its trained model's
    config.json from there (never its weights)."""
    return f"resources/models/{trained_name(model)}" if model_facts(model, MODELS[model]).needs_weights else None


def get_facts(model):
    """What the encoder registry knows about `model` (its widths need the snapshot for HF models)."""
    return model_facts(model, MODELS[model], get_weights_dir(model))


def get_layers(model):
    """Hidden-state indices analysed for `model`, as non-negative ints.

    `layers: all` or a negative index needs the model's depth. A Hugging Face
    model knows it only once downloaded, so then this waits for download_model
    (a checkpoint): call it from input functions, never at parse time.
    """
    spec = MODELS[model]["layers"]
    depth = get_facts(model).depth()
    if depth is None and needs_depth(spec):
        checkpoints.download_model.get(model=trained_name(model))  # raises until the snapshot exists; Snakemake then re-evaluates
        depth = get_facts(model).depth()
        if depth is None:
            raise ConfigError(f"model '{model}': resources/models/{model}/config.json has no num_hidden_layers; "
                              f"list its layers explicitly (config key 'models.{model}.layers')")
    if depth is not None:
        return resolve_layers(model, spec, depth)
    return sorted(set(spec))


def get_model_params(wildcards):
    """Everything about a model that changes its embeddings (layers excluded: all are stored)."""
    return {k: v for k, v in MODELS[wildcards.model].items() if k not in ("layers", "batch_size")}


def get_model_weights(wildcards):
    """Downloaded weights folder for Hugging Face models; packaged models need none."""
    return get_weights_dir(wildcards.model) or []


def get_extraction_batch_size(wildcards):
    return MODELS[wildcards.model].get("batch_size", config["extraction"]["batch_size"])


def get_extraction_mem_mb(wildcards):
    """Memory of one extraction job, as the model's encoder module sizes it."""
    return get_facts(wildcards.model).resources()["mem_mb"]


def get_extraction_runtime(wildcards):
    """Minutes asked of a cluster for one extraction job (generous: the CPU fallback is slow)."""
    return get_facts(wildcards.model).resources()["runtime"]


def get_audio_params(wildcards=None):
    return {k: config["audio"][k] for k in ("crop_seconds", "train_crops", "crop_seed")}
