"""The random-weights twin of a model: same architecture, seeded random initialisation.

A model `<name>` of the config gets a twin `<name>_random` when
`controls.random_twin` is on: its spec is the trained model's plus
`random_init: <seed>` (the config's `controls.twin_seed`). Every encoder type
honours that key in `build`:

- Hugging Face: the model is built from the snapshot's config.json with the
  architecture's own initialisation (`AutoModel.from_config`: LayerNorm at
  scale 1, linear layers from N(0, initializer_range), ...), under the seed; the
  weights file is never read.
- Resemblyzer: the three LSTMs keep PyTorch's default initialisation
  (uniform in ±1/sqrt(256)), drawn under the seed.
- CREPE: conv and classifier layers keep PyTorch's default initialisation under
  the seed; its batch-norm running statistics (mean 0, variance 1 by default)
  would let the signal shrink block after block, so `calibrate` re-estimates
  them on audio (the train crops, see `calibration_crops`), one block at a time
  in the network's order: each block's statistics are measured with the blocks
  before it already normalised.

The seed is drawn in a forked torch RNG, so building a twin never changes the
caller's random state, and the same seed gives the same weights.

No torch at import time (the Snakefile imports this module).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from audiosae.errors import ConfigError

SUFFIX = "_random"
KEY = "random_init"


def twin_name(name: str) -> str:
    return f"{name}{SUFFIX}"


def is_twin_name(name: str) -> bool:
    return name.endswith(SUFFIX)


def trained_name(name: str) -> str:
    """`<name>` for `<name>_random` (a trained model's name is its own)."""
    return name[: -len(SUFFIX)] if is_twin_name(name) else name


def twin_spec(model_cfg: dict, seed: int) -> dict:
    """The twin's model entry: the trained model's plus the random-init marker."""
    return {**model_cfg, KEY: int(seed)}


def twin_seed(model_cfg: dict) -> int | None:
    """The seed of a twin's entry, None for a trained model."""
    seed = model_cfg.get(KEY)
    return None if seed is None else int(seed)


def check_model_names(models: dict) -> None:
    """Refuse a user model whose name ends in `_random` (that name belongs to a twin)."""
    for name in models:
        if is_twin_name(str(name)):
            raise ConfigError(f"config key 'models.{name}': names ending in '{SUFFIX}' are reserved for the "
                              f"random-weights twin of model '{trained_name(name)}'; rename it")


def add_twins(models: dict, seed: int) -> dict:
    """The config's models followed by each one's twin `<name>_random` (same order)."""
    check_model_names(models)
    return {**models, **{twin_name(name): twin_spec(cfg, seed) for name, cfg in models.items()}}


def provenance(seed: int) -> str:
    return f"random initialisation, seed {int(seed)}"


@contextmanager
def seeded(seed: int):
    """Run the body with torch's RNG seeded by `seed`, restoring the caller's RNG state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def calibration_crops(manifest, root: str | Path, sr: int, crop_seconds: float, crop_seed: int,
                      max_clips: int = 64) -> list[np.ndarray]:
    """Crops of train clips for re-estimating a twin's normalisation statistics.

    The first seeded crop (as extraction takes it) of up to `max_clips` train
    clips spread evenly over the manifest's train rows: the same list for the
    clip-level and the frame-level extraction, so both see the same twin.
    """
    from audiosae.data.audio import crop, crop_starts, load_audio

    train = manifest[manifest["split"] == "train"]
    if len(train) == 0:
        raise ValueError("the manifest has no train clips to re-estimate the twin's batch-norm statistics on")
    pick = np.unique(np.linspace(0, len(train) - 1, min(max_clips, len(train))).round().astype(int))
    out = []
    for row in train.iloc[pick].itertuples(index=False):
        start = crop_starts(row.clip_id, float(row.duration_s), crop_seconds, 1, crop_seed, "train")[0]
        out.append(crop(load_audio(Path(root) / row.path, sr), sr, start, crop_seconds))
    return out


def calibrate_if_needed(enc, manifest, root, crop_seconds: float, crop_seed: int) -> None:
    """Give an encoder that asks for it (`needs_calibration`) its train crops."""
    if getattr(enc, "needs_calibration", False):
        enc.calibrate(calibration_crops(manifest, root, enc.sample_rate, crop_seconds, crop_seed))
