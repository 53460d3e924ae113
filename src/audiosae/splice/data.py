"""The clips a node is spliced on, and the output-level probes that read the network's last layer.

Test clips: the union over probe targets of each target's test clips (its own split:
the corpus split, or the seeded random split), each as its first crop, cut as
extraction cuts it, so the clean pass recomputes the stores' own rows.

Output-level probe (one per probe target): a multinomial logistic regression on
the standardised clean last-layer clip vectors of the target's train clips (the
embedding store's rows, every train crop), read on clean or patched test clips.
A patched clip's vector is its patched last hidden state averaged over frames,
as the store pools it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class SpliceClips:
    """The test clips of a splice job: one row each, with every target's split and label."""

    items: pd.DataFrame
    """clip_id, path, start_s, duration_s, then per target `split:<label>` and `<label>` columns."""
    targets: list[str]

    def test_mask(self, target: str) -> np.ndarray:
        return (self.items[f"split:{target}"] == "test").to_numpy()


def first_crop_starts(rows: pd.DataFrame, crop_seconds: float, crop_seed: int) -> list[float]:
    """Each clip's first crop start (s), as extraction cuts it (audiosae.data.audio.crop_starts)."""
    from audiosae.data.audio import crop_starts

    return [float(crop_starts(r.clip_id, float(r.duration_s), crop_seconds, 1, crop_seed, r.split)[0])
            for r in rows.itertuples(index=False)]


def splice_clips(manifest: pd.DataFrame, targets: list[dict], split_params: dict, crop_seconds: float,
                 crop_seed: int) -> SpliceClips:
    """Every clip that is a test clip of some probe target, in manifest order, with its first crop's start."""
    from audiosae.data.corpus import target_splits

    man = manifest.reset_index(drop=True)
    cols = {}
    for t in targets:
        cols[f"split:{t['label']}"] = target_splits(man.assign(**{t["label"]: man[t["label"]].astype(str)}), t,
                                                     split_params).astype(str).to_numpy()
    split_cols = pd.DataFrame(cols, index=man.index)
    keep = (split_cols == "test").any(axis=1).to_numpy()
    rows = man[keep].copy()
    rows["start_s"] = first_crop_starts(rows, crop_seconds, crop_seed)
    out = rows[["clip_id", "path", "split", "start_s", "duration_s"]].reset_index(drop=True)
    for t in targets:
        out[f"split:{t['label']}"] = split_cols.loc[keep, f"split:{t['label']}"].to_numpy()
        out[t["label"]] = rows[t["label"]].astype(str).to_numpy()
    out["clip_id"] = out["clip_id"].astype(str)
    return SpliceClips(out, [t["label"] for t in targets])


def audio_batches(items: pd.DataFrame, sr: int, crop_seconds: float, batch_size: int, root: Path | str):
    """(row indices, [B, T] float32 tensor) batches of `items`' crops, in order."""
    import torch

    from audiosae.data.audio import crop, load_audio

    root = Path(root)
    for start in range(0, len(items), batch_size):
        part = items.iloc[start : start + batch_size]
        waves = []
        for r in part.itertuples(index=False):
            try:
                wave = load_audio(root / r.path, sr)
            except Exception as err:
                raise RuntimeError(f"cannot read clip {r.clip_id!r} from {root / r.path}: {err}") from err
            waves.append(crop(wave, sr, float(r.start_s), crop_seconds))
        yield np.arange(start, start + len(part)), torch.from_numpy(np.stack(waves).astype(np.float32))


@dataclass
class OutputProbe:
    """A logistic probe of one target on the clean last-layer clip vectors."""

    target: str
    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    model: object = field(repr=False)
    n_train: int = 0

    def proba(self, x: np.ndarray) -> np.ndarray:
        """[N, n_classes] class probabilities of pooled last-layer vectors."""
        return self.model.predict_proba((np.asarray(x, dtype=np.float64) - self.mean) / self.scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.proba(x).argmax(axis=1)

    def labels(self, values) -> np.ndarray:
        """Class indices of label values (-1 for a value the probe never saw)."""
        lookup = {c: i for i, c in enumerate(self.classes)}
        return np.array([lookup.get(str(v), -1) for v in values], dtype=np.int64)


def fit_output_probes(store: Path | str, last_layer: int, manifest: pd.DataFrame, targets: list[dict],
                      split_params: dict, seed: int = 42) -> dict[str, OutputProbe]:
    """{target: OutputProbe} trained on the store's `layer<last_layer>` rows of each target's train clips."""
    from sklearn.linear_model import LogisticRegression

    from audiosae.data.corpus import target_splits
    from audiosae.store import read_array, read_index

    index = read_index(store)
    values = read_array(store, f"layer{last_layer}").astype(np.float64)
    man = manifest.assign(clip_id=manifest["clip_id"].astype(str)).reset_index(drop=True)
    probes = {}
    for t in targets:
        label = t["label"]
        labelled = man.assign(**{label: man[label].astype(str)})
        split = pd.Series(target_splits(labelled, t, split_params).to_numpy(), index=labelled["clip_id"])
        value = pd.Series(labelled[label].to_numpy(), index=labelled["clip_id"])
        ids = index["clip_id"].astype(str)
        mask = (split.reindex(ids).to_numpy() == "train")
        x, y = values[mask], value.reindex(ids).to_numpy()[mask]
        classes = sorted(labelled[label].unique())
        if len(set(y)) < 2:
            raise ValueError(f"output-level probe of '{label}': its train clips in {store} hold fewer than two "
                             f"classes")
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        lookup = {c: i for i, c in enumerate(classes)}
        yi = np.array([lookup[v] for v in y])
        model = LogisticRegression(max_iter=2000, random_state=seed).fit((x - mean) / scale, yi)
        # a class absent from train gets no column from sklearn; keep one column per class
        probe = OutputProbe(label, classes, mean, scale, _AllClasses(model, len(classes)), n_train=int(mask.sum()))
        probes[label] = probe
    return probes


class _AllClasses:
    """A fitted classifier whose predict_proba has a column for every class (0 for classes unseen in train)."""

    def __init__(self, model, n_classes: int):
        self.model, self.n_classes = model, n_classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.model.predict_proba(x)
        out = np.zeros((p.shape[0], self.n_classes))
        out[:, self.model.classes_] = p
        return out
