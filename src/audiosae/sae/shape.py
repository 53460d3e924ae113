"""An SAE's shape and loss settings (`SAEConfig`), saved as config.json beside its weights.

Apart from `audiosae.sae.model` so that what only reads a trained SAE's files (its
export, `audiosae.interop.export`) needs no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ARCHS = ("topk", "batchtopk", "relu_l1")
INITS = ("linear", "tied")


@dataclass
class SAEConfig:
    """Everything that defines an SAE's shape and loss; saved as config.json beside the weights."""

    input_dim: int
    """Width of the vectors the SAE reconstructs (the layer's width)."""
    n_latents: int
    """Number of latents (dictionary size); the paper uses 2048 for 768-d layers."""
    k: int
    """Active codes per item (topk), or per item on average (batchtopk): k = int((1 - s) * n_latents)."""
    arch: str = "topk"
    """topk (the paper) | batchtopk | relu_l1."""
    pre_bias: bool = False
    """Subtract a learnt bias (initialised from the train mean) before encoding, add it after decoding."""
    unit_norm_decoder: bool = False
    """Keep decoder columns at unit norm (gradient parallel to each column removed)."""
    auxk: float = 0.0
    """Coefficient of the AuxK loss on dead latents; 0 turns it off (the paper)."""
    auxk_k: int = 256
    """Most dead latents the AuxK loss uses per item."""
    l1: float = 1e-3
    """Coefficient of the L1 penalty on codes (relu_l1 only)."""
    normalize_inputs: bool = False
    """Standardise each input dimension with stored train-split mean and std."""
    init: str = "linear"
    """linear (the paper: nn.Linear's default) | tied (unit-norm random decoder columns, encoder = decoder^T)."""
    dead_after: int | None = None
    """Training samples seen without firing after which a latent counts as dead (AuxK);
    train_sae sets it to one pass over the train split. Required when auxk > 0."""

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SAEConfig.{name} must be a positive integer, got {value!r}")

        for name in ("input_dim", "n_latents", "k", "auxk_k"):
            positive_int(name)
        if self.k > self.n_latents:
            raise ValueError(f"SAEConfig.k = {self.k} exceeds n_latents = {self.n_latents}")
        if self.arch not in ARCHS:
            raise ValueError(f"SAEConfig.arch must be one of {ARCHS}, got {self.arch!r}")
        if self.init not in INITS:
            raise ValueError(f"SAEConfig.init must be one of {INITS}, got {self.init!r}")
        for name in ("pre_bias", "unit_norm_decoder", "normalize_inputs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"SAEConfig.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("auxk", "l1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"SAEConfig.{name} must be a number >= 0, got {value!r}")
        if self.dead_after is not None:
            positive_int("dead_after")
        if self.auxk > 0 and self.dead_after is None:
            raise ValueError("SAEConfig.dead_after must be set when auxk > 0 (samples without firing = dead)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SAEConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
