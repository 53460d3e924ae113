"""JSON results on disk: numpy values made plain, NaN written as null, atomic writes; the one JSON writer and
reader of the package."""

from __future__ import annotations

import json
import math

import numpy as np

from pathlib import Path

from audiosae.atomic import write_text


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


class ResultFileError(ValueError):
    """A result file is missing or is not valid JSON."""


def write_json(path, doc, indent: int | None = 1) -> None:
    """Write `doc` to `path` atomically (temporary sibling, then rename), NaN as null."""
    write_text(path, json.dumps(to_jsonable(doc), indent=indent, allow_nan=False, ensure_ascii=False) + "\n")


def read_json(path, error: type[Exception] = ResultFileError):
    """The JSON document at `path`; a missing or malformed file raises `error` naming it and what to do."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found; run the stage that writes it first") from None
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({err}); delete it and rerun its rule") from None
