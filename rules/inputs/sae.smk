# Input functions and params of rules/sae.smk (Snakemake keeps functions out of rule files).

from audiosae.sae.settings import SAESettings

SAE_SETTINGS = SAESettings.from_config(config["sae"])


def get_sae_params(wildcards):
    """Every sae.* setting that changes an SAE's weights, codes or metrics (SAESettings), for train_sae."""
    return {"sparsity": float(wildcards.sparsity), **SAE_SETTINGS.as_dict()}


def get_sae_seed_params(wildcards):
    """get_sae_params with the extra seed of rule train_sae_seed."""
    return {**get_sae_params(wildcards), "seed": int(wildcards.seed)}
