"""Atomic writes: a killed job never leaves a table, figure or page that looks complete."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write to; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def captions_path(figures_dir: Path | str, section: str) -> Path:
    """Where a report section's figure captions go: ``<figures_dir>/captions/<section>.json``."""
    return Path(figures_dir) / "captions" / f"{section}.json"


def write_captions(figures_dir: Path | str, section: str, captions: dict[str, str]) -> Path:
    """Write a section's ``{figure: caption}`` atomically; returns the path."""
    import json

    path = captions_path(figures_dir, section)
    write_text(path, json.dumps(captions, indent=1, ensure_ascii=False) + "\n")
    return path


def read_captions(paths) -> dict[str, str]:
    """Every section's captions merged into one ``{figure: caption}``."""
    import json

    out: dict[str, str] = {}
    for p in paths:
        out.update(json.loads(Path(p).read_text(encoding="utf-8")))
    return out
