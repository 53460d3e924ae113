"""Resemblyzer's GE2E speaker encoder, whose weights ship inside the package."""

from __future__ import annotations


def layer_widths() -> list[int]:
    """Width of each hidden state: 0 is the 40-band mel input, 1..3 the LSTM layers."""
    return [40, 256, 256, 256]
