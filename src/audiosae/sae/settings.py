"""SAE training settings: the one definition of every ``sae.*`` option (clip level) and ``sae.frame.*`` option
(frame level), with the config schema's defaults.

The rules' params (``rules/sae.smk``, ``rules/frames.smk``), ``make_config``, ``train_sae`` and
``train_frame_sae`` all take their settings from here, so adding an option is one field below plus one
entry in the config schema (a test checks that both list the same keys and defaults).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# Keys of the schema's `sae` block that choose *which* SAEs a study trains rather than how one is trained.
STUDY_KEYS = ("sparsities", "levels", "frame", "external")
FRAME_STUDY_KEYS = ("sparsities",)


@dataclass(frozen=True)
class SAESettings:
    """How one clip-level SAE is shaped and trained (``sae.*`` of the config)."""

    dim: int | str = 2048
    """Latents: a number, or a multiple of the layer's width such as "x4"."""
    min_dim: int = 1
    """The fewest latents `dim` may give (a floor for narrow layers)."""
    arch: str = "topk"
    pre_bias: bool = False
    unit_norm_decoder: bool = False
    auxk: float = 0.0
    auxk_k: int = 256
    l1: float = 1e-3
    normalize_inputs: bool = False
    init: str = "linear"
    """linear (nn.Linear's default, the paper's) | tied (unit-norm random decoder columns, encoder = decoder^T)."""
    lr: float = 1e-3
    lr_warmup: float = 0.0
    """Share of the training steps over which the learning rate rises linearly (0: none, the paper)."""
    lr_decay: float = 0.0
    """Share of the training steps, at the end, over which it falls linearly to zero (0: none, the paper)."""
    batch_size: int = 16
    epochs: int = 100
    patience: int | None = None
    seed: int = 42
    device: object = "auto"
    """"auto", "cpu", "cuda", "cuda:N", or a resolved torch.device."""
    compile: bool = False
    """torch.compile the training step's forward on CUDA (ignored on CPU, where it does not pay)."""

    MODEL_FIELDS = ("dim", "min_dim", "arch", "pre_bias", "unit_norm_decoder", "auxk", "auxk_k", "l1", "normalize_inputs",
                    "init")
    """The fields that shape the SAE itself (make_config's); the others shape its training."""

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_config(cls, sae: dict) -> "SAESettings":
        """The settings of a validated config's ``sae`` block (clip level)."""
        return cls(**{k: sae[k] for k in SAESettings.keys()})

    def model_kwargs(self) -> dict:
        """make_config's settings."""
        return {k: getattr(self, k) for k in self.MODEL_FIELDS}

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FrameSAESettings(SAESettings):
    """How one frame-level SAE is trained: the clip settings, except ``sae.frame.*``'s own recipe (width, init,
    unit-norm decoder, AuxK, batch size, learning rate and its schedule, epochs; chosen for seed stability,
    docs/stability.md) and the streaming options."""

    dim: int | str = "x0.25"
    """Latents: a number, or a multiple of the layer's width ("x0.25": a quarter of it), at least `min_dim`."""
    min_dim: int = 32
    init: str = "tied"
    unit_norm_decoder: bool = True
    auxk: float = 0.0
    batch_size: int = 256
    lr: float = 1e-2
    lr_warmup: float = 0.05
    lr_decay: float = 0.2
    epochs: int = 10
    max_frames: int | None = None
    shuffle_buffer: int = 65536
    pooling: str = "mean"
    """How a clip's frame codes become its one vector in latents.zarr: mean | max."""

    @classmethod
    def frame_keys(cls) -> list[str]:
        """The keys of the config's ``sae.frame`` block (the others come from ``sae``)."""
        return list(FrameSAESettings.__annotations__)  # the fields declared (or redeclared) in this class

    @classmethod
    def from_config(cls, sae: dict) -> "FrameSAESettings":
        frame = sae["frame"]
        return cls(**{k: (frame[k] if k in cls.frame_keys() else sae[k]) for k in cls.keys()})
