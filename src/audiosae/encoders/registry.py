"""One interface over every kind of model the config can name (`source:`).

Adding an encoder type is one module and one line in `SOURCES`: the module
defines `Facts` (what the config and the rules need to know without running
the model: see `audiosae.encoders.base`) and the runnable encoder that
`Facts.build` returns. The config schema takes each source's own keys from
`Facts.options`; the Snakefile asks `model_facts` for layer widths, depth,
the frame grid and job resources.

A runnable encoder takes a batch of equal-length waveforms at its own sample
rate and returns one pooled vector per clip for EVERY hidden state, so that a
single forward pass feeds all layers of the embedding store:

    enc = build_encoder(model_cfg, weights_dir, device)
    states = enc.hidden_states(batch)        # batch: float32 [B, T] at enc.sample_rate
    len(states) == enc.num_hidden_states     # states[i]: float32 [B, enc.layer_widths[i]] on CPU
    frames = enc.frame_states(batch)         # frames[i]: float32 [B, facts.num_frames(T), width] on CPU

Index 0 is the model's input representation (the embedding output for Hugging
Face models, the first conv block for CREPE, the mel input for Resemblyzer).
Pooling is the mean over time (and over CREPE's intra-frame axis); see each
module for what exactly is averaged.

This module imports no torch at import time (the Snakefile imports it).
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from audiosae.encoders.base import EncoderFacts
from audiosae.errors import ConfigError

if TYPE_CHECKING:
    import torch

# source -> module defining `Facts` (one line per encoder type).
SOURCES = {
    "hf": "audiosae.encoders.hf",
    "crepe": "audiosae.encoders.crepe",
    "resemblyzer": "audiosae.encoders.resemblyzer",
}
# Keys every model entry takes, whatever its source (see schemas/config.schema.yaml).
COMMON_KEYS = ("source", "layers", "batch_size")


@runtime_checkable
class Encoder(Protocol):
    sample_rate: int
    num_hidden_states: int
    layer_widths: list[int]

    def hidden_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        """Pooled hidden states of a [B, T] batch: a list (one per state) of float32 [B, dim] CPU tensors."""
        ...

    def frame_states(self, batch: "torch.Tensor") -> "list[torch.Tensor]":
        """Per-frame hidden states of an equal-length [B, T] batch: float32 [B, frames, dim] CPU tensors."""
        ...

    def describe(self) -> dict:
        """What the store's attrs record about this encoder (id, revision, pooling, hop, ...)."""
        ...


def facts_class(source: str, name: str = "?") -> type[EncoderFacts]:
    if source not in SOURCES:
        raise ConfigError(f"config key 'models.{name}.source': unknown source {source!r}; "
                          f"use one of {', '.join(SOURCES)}")
    return importlib.import_module(SOURCES[source]).Facts


def model_facts(name: str, model_cfg: dict, weights_dir: str | Path | None = None) -> EncoderFacts:
    """The facts of config entry `models.<name>` (`weights_dir`: its snapshot, for sources that download one)."""
    return facts_class(model_cfg["source"], name)(name, model_cfg, weights_dir)


def source_options() -> dict[str, dict]:
    """{source: JSON schema of the model keys only that source accepts}."""
    return {source: dict(facts_class(source).options) for source in SOURCES}


def build_encoder(model_cfg: dict, weights_dir: str | None, device: "torch.device | str" = "cpu",
                  dtype: str = "float32", name: str | None = None) -> Encoder:
    """The encoder for one `models.<name>` entry of the config.

    `weights_dir` is the downloaded snapshot (resources/models/<name>) for sources
    that need one; packaged models (crepe, resemblyzer) ignore it. `dtype` other
    than float32 is honoured on CUDA only (see compute_dtype).
    """
    import torch

    device = torch.device(device)
    torch_dtype = compute_dtype(dtype, device)
    name = name or model_cfg.get("id", model_cfg.get("source", "?"))
    if model_cfg.get("source") not in SOURCES:
        raise ValueError(f"model '{name}': unknown source {model_cfg.get('source')!r}; use one of {', '.join(SOURCES)}")
    return model_facts(name, model_cfg, weights_dir).build(device, torch_dtype)


def compute_dtype(dtype: str, device: "torch.device") -> "torch.dtype":
    """torch dtype for the config's extraction.dtype.

    Half types apply on CUDA only (schema: "half types apply on GPU only"); on
    CPU they fall back to float32 with a warning, and the store's attrs record
    the dtype actually used.
    """
    import torch

    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"config key 'extraction.dtype': {dtype!r} is not one of {', '.join(table)}")
    if table[dtype] != torch.float32 and device.type != "cuda":
        warnings.warn(f"extraction.dtype {dtype} applies on GPU only; computing in float32 on {device}")
        return torch.float32
    return table[dtype]


def resolve_layers(name: str, layers: Any, depth: int) -> list[int]:
    """Hidden-state indices (negatives counted from the end, 'all') as sorted non-negative ints.

    `depth` is the number of hidden states (embedding output included).
    """
    if layers == "all":
        return list(range(depth))
    out = []
    for layer in layers:
        if not -depth <= layer < depth:
            raise ConfigError(
                f"config key 'models.{name}.layers': layer {layer} is out of range for model '{name}', "
                f"which has hidden states 0..{depth - 1} (or -{depth}..-1)"
            )
        out.append(layer % depth)
    return sorted(set(out))


def needs_depth(layers: Any) -> bool:
    """Whether resolving `layers` needs the model's depth ('all' or a negative index)."""
    return layers == "all" or any(layer < 0 for layer in layers)


def check_layers(name: str, layers, encoder: Encoder) -> list[int]:
    """Validate a config's `layers` against the encoder's real depth (named error when out of range)."""
    return resolve_layers(name, layers, encoder.num_hidden_states)
