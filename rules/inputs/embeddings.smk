# Input functions and params of rules/embeddings.smk (Snakemake keeps functions out of rule files).

def get_model_repo_id(wildcards):
    """Hugging Face id of a model (download_model only serves `source: hf` models)."""
    model = MODELS[wildcards.model]
    if not get_facts(wildcards.model).needs_weights:
        raise ConfigError(
            f"model '{wildcards.model}' has source '{model['source']}': its weights ship with its package, "
            f"there is nothing to download"
        )
    return model["id"]


def get_model_revision(wildcards):
    return MODELS[wildcards.model].get("revision", "main")
