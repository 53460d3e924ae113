"""JSON results on disk: numpy values made plain, NaN written as null, atomic writes."""

from __future__ import annotations

import json
import math

import numpy as np

from audiosae.atomic import atomic_output


def to_jsonable(obj):
    """Numpy values to plain Python; NaN and inf become None (JSON null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def write_json(path, doc) -> None:
    """Write `doc` to `path` atomically (temporary sibling, then rename), NaN as null."""
    text = json.dumps(to_jsonable(doc), indent=1, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)
