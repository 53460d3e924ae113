"""One interface over every kind of model the config can name (`source:`).

An encoder takes a batch of equal-length waveforms at its own sample rate and
returns one pooled vector per clip for EVERY hidden state, so that a single
forward pass feeds all layers of the embedding store:

    enc = build_encoder(model_cfg, weights_dir, device)
    states = enc.hidden_states(batch)        # batch: float32 [B, T] at enc.sample_rate
    len(states) == enc.num_hidden_states     # states[i]: float32 [B, enc.layer_widths[i]] on CPU

Index 0 is the model's input representation (the embedding output for Hugging
Face models, the first conv block for CREPE, the mel input for Resemblyzer).
Pooling is the mean over time (and over CREPE's intra-frame axis); see each
module for what exactly is averaged.
"""

from __future__ import annotations

import warnings
from typing import Protocol, runtime_checkable

import torch

from audiosae.config import resolve_layers

SOURCES = ("hf", "crepe", "resemblyzer")


@runtime_checkable
class Encoder(Protocol):
    sample_rate: int
    num_hidden_states: int
    layer_widths: list[int]

    def hidden_states(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """Pooled hidden states of a [B, T] batch: a list (one per state) of float32 [B, dim] CPU tensors."""
        ...

    def describe(self) -> dict:
        """What the store's attrs record about this encoder (id, revision, pooling, hop, ...)."""
        ...


def build_encoder(model_cfg: dict, weights_dir: str | None, device: torch.device | str = "cpu",
                  dtype: str = "float32", name: str | None = None) -> Encoder:
    """The encoder for one `models.<name>` entry of the config.

    `weights_dir` is the downloaded snapshot (resources/models/<name>) for `hf`
    models; packaged models (crepe, resemblyzer) ignore it. `dtype` other than
    float32 is honoured on CUDA only (see compute_dtype).
    """
    device = torch.device(device)
    torch_dtype = compute_dtype(dtype, device)
    source = model_cfg["source"]
    name = name or model_cfg.get("id", source)
    if source == "hf":
        from audiosae.encoders.hf import HFEncoder

        if not weights_dir:
            raise ValueError(f"model '{name}': a Hugging Face model needs its weights folder (resources/models/{name})")
        return HFEncoder(model_cfg, weights_dir, device, torch_dtype, name=name)
    if source == "crepe":
        from audiosae.encoders.crepe import CrepeEncoder

        return CrepeEncoder(capacity=model_cfg.get("capacity", "tiny"), hop_ms=model_cfg.get("hop_ms", 10.0),
                            device=device, dtype=torch_dtype)
    if source == "resemblyzer":
        from audiosae.encoders.resemblyzer import ResemblyzerEncoder

        return ResemblyzerEncoder(device=device, dtype=torch_dtype)
    raise ValueError(f"model '{name}': unknown source {source!r}; use one of {', '.join(SOURCES)}")


def compute_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """torch dtype for the config's extraction.dtype.

    Half types apply on CUDA only (schema: "half types apply on GPU only"); on
    CPU they fall back to float32 with a warning, and the store's attrs record
    the dtype actually used.
    """
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"config key 'extraction.dtype': {dtype!r} is not one of {', '.join(table)}")
    if table[dtype] != torch.float32 and device.type != "cuda":
        warnings.warn(f"extraction.dtype {dtype} applies on GPU only; computing in float32 on {device}")
        return torch.float32
    return table[dtype]


def check_layers(name: str, layers, encoder: Encoder) -> list[int]:
    """Validate a config's `layers` against the encoder's real depth (named error when out of range)."""
    return resolve_layers(name, layers, encoder.num_hidden_states)
