"""VocalSet's folder layout: which WAVs are clips of which singer, context and technique.

Both releases are read: v1.1 keeps the clips under ``FULL/<singer>/<context>/<technique>/``,
v1.2 under ``data_by_singer/<singer>/<context>/<technique>/`` (its other folders,
``data_by_technique`` and so on, hold the same files again and are ignored). The
synthetic corpus uses the v1.1 layout.

Singer, context and technique come from the folders, never from the file name,
because some files lack the singer prefix. Folder names are normalised (case,
accents, spaces) and two known misspellings are mapped: ``vibrado`` -> vibrato and
``trillà`` (however the zip encoded the accent) -> trillo. A file is kept when its
technique is one of the requested classes and the last ``_``-separated token of
its name, after dropping a duplicate marker such as ``(1)``, is a vowel
(a, e, i, o, u), one of VocalSet's ``c``/``f`` tokens, or ``spoken``; that rule drops
the excerpts sung straight or with vibrato.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TECHNIQUES = ("belt", "breathy", "inhaled", "lip_trill", "spoken", "straight", "trill", "trillo", "vibrato",
              "vocal_fry")
KEPT_LAST_TOKENS = frozenset({"a", "e", "i", "o", "u", "c", "f", "spoken"})
LAYOUT_DIRS = ("FULL", "data_by_singer")  # v1.1, v1.2; the first found wins

# Misspelt folders, after normalise_name(): VocalSet has 'vibrado', and 'trillà'
# (an accent that zip tools may also have turned into cp437 box characters).
ALIASES = {"vibrado": "vibrato", "trilla": "trillo"}

_DUPLICATE = re.compile(r"\(\d+\)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class LayoutError(RuntimeError):
    """The corpus folder does not look like VocalSet."""


def normalise_name(name: str) -> str:
    """A folder name in lowercase ASCII: accents stripped, spaces and dashes as '_', other symbols dropped."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    lowered = re.sub(r"[\s-]+", "_", ascii_only.strip().lower())
    return re.sub(r"[^a-z0-9_]", "", lowered)


def technique_of(folder: str) -> str:
    """The class named by a technique folder ('vibrado' -> 'vibrato', 'trillà' -> 'trillo')."""
    name = normalise_name(folder)
    return ALIASES.get(name, name)


def last_token(stem: str) -> str:
    """The last '_'-separated token of a file stem, lowercased, without a '(n)' duplicate marker."""
    token = stem.rsplit("_", 1)[-1]
    return _DUPLICATE.sub("", token).strip().lower()


def clip_id_of(singer: str, context: str, technique: str, stem: str) -> str:
    """Filesystem-safe id 'singer__context__technique__stem' ('a(1)' becomes 'a-1')."""
    safe_stem = _UNSAFE.sub("-", _DUPLICATE.sub(lambda m: "-" + m.group(0)[1:-1], stem)).strip("-")
    return f"{singer}__{context}__{technique}__{safe_stem}"


def find_layout(root: Path | str) -> Path:
    """The folder holding one sub-folder per singer (root/FULL, root/data_by_singer, or one level down)."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"corpus folder {root} does not exist; run the rule that makes it (download_vocalset "
                          f"or synthesize_corpus)")
    candidates = [root / d for d in LAYOUT_DIRS]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        candidates += [sub / d for d in LAYOUT_DIRS]
    for c in candidates:
        if c.is_dir():
            return c
    raise LayoutError(
        f"no VocalSet layout under {root}: expected a folder FULL/ (v1.1) or data_by_singer/ (v1.2) holding "
        f"<singer>/<context>/<technique>/<file>.wav; delete {root} and rerun to download and extract it again"
    )


@dataclass(frozen=True)
class Scan:
    """Result of reading a corpus folder."""

    clips: pd.DataFrame      # kept files: clip_id, path, singer, context, technique, vowel
    dropped: pd.DataFrame    # other WAVs: path, reason
    layout: Path             # the folder holding the singers


CLIP_COLUMNS = ["clip_id", "path", "singer", "context", "technique", "vowel"]


def scan_corpus(root: Path | str, techniques: list[str] | tuple[str, ...] = TECHNIQUES) -> Scan:
    """Every WAV under the corpus, split into kept clips and dropped files (with the reason).

    Paths are `root` joined with the file's path inside it, so a relative `root`
    gives relative paths. Rows are sorted by path.
    """
    layout = find_layout(root)
    wanted = set(techniques)
    kept, dropped = [], []
    files = sorted(p for p in layout.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    for p in files:
        rel = p.relative_to(layout)
        if p.name.startswith(".") or any(part.startswith(("__MACOSX", ".")) for part in rel.parts[:-1]):
            continue  # macOS resource forks, not audio
        if len(rel.parts) != 4:
            dropped.append({"path": str(p), "reason": "not at <singer>/<context>/<technique>/<file>.wav"})
            continue
        singer, context, technique = normalise_name(rel.parts[0]), normalise_name(rel.parts[1]), technique_of(rel.parts[2])
        token = last_token(p.stem)
        if technique not in wanted:
            dropped.append({"path": str(p), "reason": f"technique '{technique}' not in data.techniques"})
        elif token not in KEPT_LAST_TOKENS:
            dropped.append({"path": str(p), "reason": f"last name token '{token}' is not a vowel or 'spoken'"})
        else:
            kept.append({"clip_id": clip_id_of(singer, context, technique, p.stem), "path": p.as_posix(),
                         "singer": singer, "context": context, "technique": technique, "vowel": token})
    clips = pd.DataFrame(kept, columns=CLIP_COLUMNS)
    dup = clips["clip_id"].duplicated(keep=False)
    if dup.any():
        # Distinct files can only collide after sanitising (e.g. 'a(1)' beside 'a-1'): number them.
        clips.loc[dup, "clip_id"] = clips.loc[dup, "clip_id"] + "-dup" + clips[dup].groupby("clip_id").cumcount().astype(str)
    return Scan(clips=clips, dropped=pd.DataFrame(dropped, columns=["path", "reason"]), layout=layout)
