"""A report section's figure captions on disk: ``results/figures/captions/<section>.json``."""

from __future__ import annotations

from pathlib import Path

from audiosae.jsonio import read_json, write_json


def captions_path(figures_dir: Path | str, section: str) -> Path:
    """Where a report section's figure captions go: ``<figures_dir>/captions/<section>.json``."""
    return Path(figures_dir) / "captions" / f"{section}.json"


def write_captions(figures_dir: Path | str, section: str, captions: dict[str, str]) -> Path:
    """Write a section's ``{figure: caption}`` atomically; returns the path."""
    path = captions_path(figures_dir, section)
    write_json(path, captions)
    return path


def read_captions(paths) -> dict[str, str]:
    """Every section's captions merged into one ``{figure: caption}``."""
    out: dict[str, str] = {}
    for p in paths:
        out.update(read_json(p))
    return out
