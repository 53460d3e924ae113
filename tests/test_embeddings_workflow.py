"""The embeddings stage inside the workflow: CREPE on the synthetic corpus carries the pitch.

A ridge regression from each CREPE layer's pooled vectors to the true f0 of the
audio each vector saw (the synthesiser's f0 track over that item's crop) is fit
on the train singers' crops and scored on the held-out test singers' clips.
The conv blocks' channel means carry pitch only weakly; CREPE's output layer
(hidden state 6, 360 pitch bins) is a place code of pitch that a linear
read-out turns into f0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_snakemake, tiny_config

pytestmark = pytest.mark.workflow


def _data_stage_ready() -> bool:
    return "rule manifest" in (REPO / "rules/data.smk").read_text()


def true_f0(workdir: Path, path: Path) -> np.ndarray:
    """True f0 (Hz) of the audio behind each row of an embeddings store.

    With the synthesiser's f0 tracks, the mean f0 of exactly the crop the model
    saw (a scale's first seconds sit lower than its mean); without them, the
    whole clip's f0 from factors.csv.
    """
    from audiosae import store
    from audiosae.data.audio import crop_starts

    index, attrs = store.read_index(path), store.read_attrs(path)
    manifest = pd.read_csv(workdir / "results/data/manifest.csv").set_index("clip_id")
    corpus = workdir / "resources/synthetic"
    tracks_file = corpus / "f0_tracks.npz"
    if tracks_file.exists():
        from audiosae.data.synthetic import crop_f0, load_f0_tracks

        tracks = load_f0_tracks(tracks_file)
        out = []
        for row in index.itertuples(index=False):
            clip = manifest.loc[row.clip_id]
            start = crop_starts(row.clip_id, clip.duration_s, attrs["crop_seconds"], attrs["train_crops"],
                                attrs["crop_seed"], row.split)[row.crop]
            rel = Path(clip.path).relative_to("resources/synthetic").as_posix()
            out.append(crop_f0(tracks[rel], start, attrs["crop_seconds"]))
        return np.array(out)
    factors = pd.read_csv(corpus / "factors.csv")
    f0 = dict(zip("resources/synthetic/" + factors["path"], factors["f0_hz"]))
    return index["clip_id"].map(lambda c: f0[manifest.loc[c, "path"]]).to_numpy(dtype=float)


def pitch_r2(workdir: Path, model: str = "crepe") -> dict[int, float]:
    """R² of log f0 on held-out clips per layer: ridge, 5-fold cross-validation grouped by clip.

    Every item's target is the true mean f0 of the audio its vector saw. The
    inputs are not standardised: that would inflate pitch bins few clips reach.
    Folds (and the inner folds choosing alpha) are grouped by clip, since a
    clip's train crops overlap and would leak into each other's folds.
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict

    from audiosae import store

    path = workdir / f"results/embeddings/{model}.zarr"
    index = store.read_index(path)
    f0 = true_f0(workdir, path)
    voiced = np.isfinite(f0)  # a crop of silence has no pitch
    y = np.log(f0[voiced])
    groups = index["clip_id"].to_numpy()[voiced]
    out = {}
    for layer in store.layer_indices(path):
        x = store.read_array(path, f"layer{layer}")[voiced]
        search = GridSearchCV(Ridge(), {"alpha": np.logspace(-6, 3, 19)}, cv=GroupKFold(5))
        pred = cross_val_predict(search, x, y, groups=groups, cv=GroupKFold(5), params={"groups": groups})
        out[layer] = float(r2_score(y, pred))
    return out


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # the smallest alphas of the grid
@pytest.mark.skipif(not _data_stage_ready(), reason="rules/data.smk has no manifest rule yet")
def test_crepe_layers_carry_the_pitch_of_held_out_clips(tmp_path):
    # Ten singers: a linear read-out of a pitch place code needs the training pitches to cover the
    # held-out clips' range. Measured here: the pitch-bin output (state 6) reaches about 0.91-0.92,
    # the conv blocks' channel means 0.5-0.85; CREPE tracks inhaled and fry clips worst.
    cfg = tiny_config()
    cfg["data"]["synthetic"]["singers"] = [f"{sex}{i}" for sex in ("female", "male") for i in range(1, 6)]
    run_snakemake(tmp_path, "results/embeddings/crepe.zarr", config=cfg)
    r2 = pitch_r2(tmp_path)
    print("held-out R² of log f0 per CREPE layer:", {k: round(v, 3) for k, v in r2.items()})
    assert sorted(r2) == list(range(7))
    assert max(r2.values()) > 0.9, r2
    assert max(r2, key=r2.get) == 6, "the pitch-bin output should carry the most pitch"
