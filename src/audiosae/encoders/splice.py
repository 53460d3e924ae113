"""A forward pass with one hidden state replaced: what every encoder type adds for splicing.

An encoder that can be spliced has two methods (see `Spliceable`):

- ``splice_prefix(batch, layer) -> Prefix``: runs the network up to hidden
  state ``layer`` once. ``prefix.h`` is that state per frame, float32
  ``[B, T, D]``, exactly what the frame store holds for the layer (for CREPE the
  batch-norm output averaged inside each frame; for a Hugging Face model the
  whole ``hidden_states[layer]`` sequence, summary tokens included). ``prefix``
  keeps whatever else the rest of the network needs.
- ``splice_resume(prefix, h) -> Spliced``: runs the rest of the network with
  ``h`` (same shape) in place of the state: every later hidden state per frame
  and the model's named outputs.

So a job pays for the layers before the patched one once per batch, and for
the rest once per patch. `patched` and `clean` below are the one-call forms.
``resume(prefix, prefix.h)`` is the clean network, bit for bit (a test checks it
against each encoder's own forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@dataclass
class Prefix:
    """The network run up to hidden state `layer` for one batch."""

    layer: int
    h: "torch.Tensor"
    """float32 [B, T, D]: hidden state `layer` per frame (the patch's input)."""
    state: dict[str, Any] = field(default_factory=dict)
    """What the encoder needs to resume (intermediate tensors, cached module outputs)."""


@dataclass
class Spliced:
    """What the network computes after a patch."""

    hidden: dict[int, "torch.Tensor"]
    """Hidden-state index -> float32 [B, T, D] per frame, for the patched layer and every later one."""
    outputs: dict[str, "torch.Tensor"]
    """The model's named outputs (CREPE: salience, pitch_cents, periodicity; Resemblyzer: embedding;
    Hugging Face: last_hidden_state, logits where the checkpoint has a classification head)."""

    def last(self) -> "torch.Tensor":
        """The last hidden state per frame (the one the output-level probe reads, pooled)."""
        return self.hidden[max(self.hidden)]


@runtime_checkable
class Spliceable(Protocol):
    num_hidden_states: int

    def splice_prefix(self, batch: "torch.Tensor", layer: int) -> Prefix: ...

    def splice_resume(self, prefix: Prefix, h: "torch.Tensor") -> Spliced: ...


def check_layer(name: str, layer: int, depth: int) -> int:
    layer = int(layer)
    if not 0 <= layer < depth:
        raise ValueError(f"model '{name}': cannot splice hidden state {layer}; it has hidden states 0..{depth - 1}")
    return layer


def check_patch(h: "torch.Tensor", new: "torch.Tensor", what: str) -> "torch.Tensor":
    if tuple(new.shape) != tuple(h.shape):
        raise ValueError(f"{what}: the patch returned shape {tuple(new.shape)}, the hidden state is {tuple(h.shape)}")
    return new


def patched(encoder, batch: "torch.Tensor", layer: int, patch: Callable[["torch.Tensor"], "torch.Tensor"]) -> Spliced:
    """The network with hidden state `layer` replaced by `patch(h)`, h float32 [B, T, D]."""
    prefix = encoder.splice_prefix(batch, layer)
    return encoder.splice_resume(prefix, patch(prefix.h))


def clean(encoder, batch: "torch.Tensor", layer: int) -> Spliced:
    """The unpatched network, through the same two halves."""
    prefix = encoder.splice_prefix(batch, layer)
    return encoder.splice_resume(prefix, prefix.h)
