"""What the config's ``controls`` block asks of a study: its twins, its extra SAE seeds, its k-sparse probes.

The Snakefile reads this module while it builds the DAG, so it imports nothing heavy.
"""

from __future__ import annotations

from audiosae.errors import ConfigError


def seed_sparsities(config: dict) -> list[float]:
    """The sparsities whose SAEs are trained with every seed (``controls.seed_sparsities``; null: the largest)."""
    chosen = config["controls"]["seed_sparsities"]
    return [max(config["sae"]["sparsities"])] if chosen is None else list(chosen)


def all_seeds(config: dict) -> list[int]:
    """Every training seed of a seed-stability node: ``sae.seed`` first, then ``controls.seeds``'s others."""
    seeds = config["controls"]["seeds"]
    if not seeds:
        return []
    main = int(config["sae"]["seed"])
    return [main] + [int(s) for s in seeds if int(s) != main]


def extra_seeds(config: dict) -> list[int]:
    """The seeds besides ``sae.seed`` (each gives representations ``sae<s>-seed<n>``); empty without stability."""
    seeds = all_seeds(config)
    return seeds[1:] if len(seeds) > 1 else []


def check(config: dict) -> None:
    """The controls block's checks a schema cannot express."""
    from audiosae.encoders.twin import check_model_names

    check_model_names(config["models"])
    controls = config["controls"]
    chosen = controls["seed_sparsities"]
    if chosen is not None:
        other = [s for s in chosen if s not in config["sae"]["sparsities"]]
        if other:
            raise ConfigError(f"config key 'controls.seed_sparsities': {other[0]} is not one of sae.sparsities "
                              f"{config['sae']['sparsities']}")
    if controls["seeds"] and not extra_seeds(config):
        raise ConfigError(f"config key 'controls.seeds': {controls['seeds']} adds no seed to sae.seed "
                          f"({config['sae']['seed']}); list at least one other seed, or leave it empty")
