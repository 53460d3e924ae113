"""Atomic outputs: write into a temporary sibling, rename into place when complete.

A killed job then leaves at most a ``*.tmp-<pid>`` sibling, never a file or
folder that looks finished; the next writer of the same output removes the
siblings whose process is gone (a killed frame store can be gigabytes).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def tmp_sibling(path: Path | str) -> Path:
    """``<name>.tmp-<pid><suffix>``: beside `path`, and with its suffix (matplotlib picks a format by it)."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}{path.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def clear_stale(path: Path | str) -> list[Path]:
    """Remove the temporary siblings of `path` (``<name>.tmp-<pid>…`` and ``.<name>.tmp-<pid>``) left by
    processes that no longer run; return what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for prefix in (f"{path.name}.tmp-", f".{path.name}.tmp-"):
        for sib in path.parent.glob(f"{_glob_escape(prefix)}*"):
            digits = sib.name[len(prefix):].split(".", 1)[0]
            if digits.isdigit() and int(digits) != os.getpid() and not _alive(int(digits)):
                _remove(sib)
                removed.append(sib)
    return removed


def fresh_tmp_dir(path: Path | str) -> Path:
    """An empty hidden folder ``.<name>.tmp-<pid>`` beside `path` (which need not exist yet), stale siblings of
    dead processes removed."""
    path = Path(path)
    clear_stale(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    _remove(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write (a file, or a folder to create); publish it on success.

    On any error the temporary sibling is deleted and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(path)
    tmp = tmp_sibling(path)
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    publish(tmp, path)


def publish(src: Path | str, dst: Path | str) -> None:
    """Move the finished `src` (a file or folder) to `dst`, replacing what was there: the one rename that makes
    a result visible."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)  # os.replace cannot replace a non-empty folder
    os.replace(src, dst)


def write_text(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path`, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_npz(path: Path | str, arrays: dict) -> None:
    """Write `arrays` to `path` as a compressed .npz, atomically."""
    import numpy as np

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
