"""Does removing a latent remove what it was named for?

For each class c of the probe target: the m live latents with the highest
one-vs-rest AUROC for c (measured on the clips outside the probe's test set, so
the selection never sees the clips it is judged on) are set to zero in the test
clips' SAE codes; the codes are decoded by the SAE, and the linear probe trained
on the layer's *original* output classifies the reconstructions with and without
the ablation. If the latents carry class c, class c's recall drops and the other
classes' recall barely moves. The control zeroes m random live latents instead
(the mean over `draws` draws).

A node with fewer live latents than m (a random-weights twin's sparse layer can
keep 7 of 64) is not an error: half its live latents are ablated, or, with
fewer than 2, the test is skipped; each row's ``m`` and ``note`` say so.

Numbers per class: ``recall`` (reconstructions, nothing ablated),
``drop_class`` (recall of c lost by ablating c's latents), ``drop_others``
(mean recall lost by the other classes present in the test set), the same two for
the random control, and ``specificity`` = drop_class − drop_others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from audiosae.atlas.stats import AtlasError, auroc_matrix


def load_probe_weights(path: Path | str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(weight [classes, dim], bias [classes], classes) of a probe's .npz, as a map of raw inputs.

    A probe trained on standardised inputs (``mean``/``scale`` in the file) is
    folded into an equivalent map of the raw inputs: W' = W / scale, b' = b − W' · mean.
    """
    path = Path(path)
    if not path.exists():
        raise AtlasError(f"no probe weights at {path}; run the probe on the original representation first")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("weight", "bias", "classes") if k not in z]
        if missing:
            raise AtlasError(f"probe weights {path} lack {missing}; rerun the probe")
        weight, bias = z["weight"].astype(np.float64), z["bias"].astype(np.float64)
        if "mean" in z and "scale" in z:
            weight = weight / z["scale"].astype(np.float64)[None, :]
            bias = bias - weight @ z["mean"].astype(np.float64)
        return weight, bias, [str(c) for c in z["classes"]]


def sae_decoder(sae_dir: Path | str) -> Callable[[np.ndarray], np.ndarray]:
    """decode(codes [n, latents]) -> reconstructions [n, dim] in the layer's space, with the SAE of `sae_dir`."""
    import torch

    from audiosae.sae.model import SparseAutoencoder

    sae = SparseAutoencoder.load(Path(sae_dir) / "sae.safetensors").eval()

    def decode(codes: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return sae.decode(torch.as_tensor(np.asarray(codes, dtype=np.float32))).double().numpy()

    return decode


def external_decoder(fmt: str, path: Path | str) -> Callable[[np.ndarray], np.ndarray]:
    """decode(codes) -> reconstructions in the layer's space, with an SAE imported from another library
    (sae.external: `fmt` saelens | sparsify | dictionary_learning, read by audiosae.interop.readers)."""
    import torch

    from audiosae.interop.readers import read_external

    sae = read_external(fmt, path).eval()

    def decode(codes: np.ndarray) -> np.ndarray:
        return sae.decode(torch.as_tensor(np.asarray(codes, dtype=np.float32))).double().numpy()

    return decode


def _recall(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall per class [classes] (NaN for a class absent from y)."""
    hits = np.bincount(y[pred == y], minlength=n_classes).astype(float)
    support = np.bincount(y, minlength=n_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def ablation_effects(decode: Callable[[np.ndarray], np.ndarray], codes_test: np.ndarray, y_test: np.ndarray,
                     weight: np.ndarray, bias: np.ndarray, classes: list[str], selection_auroc: np.ndarray,
                     live: np.ndarray, *, m: int = 8, draws: int = 10, seed: int = 42) -> tuple[pd.DataFrame, dict]:
    """(one row per class present in the test set, summary) — see the module docstring.

    `selection_auroc` [classes, latents]: AUROC of each latent for each class on the
    selection clips; `live` [latents]: latents that may be chosen (fire at least once).
    """
    codes_test = np.asarray(codes_test, dtype=np.float64)
    y_test = np.asarray(y_test, dtype=np.int64)
    n_classes = len(classes)
    live_idx = np.flatnonzero(live)
    m_used, note = ablation_m(len(live_idx), m)
    if m_used == 0:
        return _skipped(classes, y_test, m, note)
    m_requested, m = m, m_used

    def predict(codes):
        return (decode(codes) @ weight.T + bias).argmax(axis=1)

    base = _recall(predict(codes_test), y_test, n_classes)
    accuracy = float(np.mean(predict(codes_test) == y_test))
    present = np.flatnonzero(np.isfinite(base))
    rng = np.random.default_rng(seed)
    rows = []
    for c in present:
        others = present[present != c]
        auc = np.where(live, selection_auroc[c], -np.inf)
        auc = np.where(np.isfinite(auc), auc, -np.inf)
        chosen = np.argsort(-auc, kind="stable")[:m]
        ablated = codes_test.copy()
        ablated[:, chosen] = 0.0
        drop = base - _recall(predict(ablated), y_test, n_classes)
        control = []
        for _ in range(draws):
            rand = rng.choice(live_idx, size=m, replace=False)
            ab = codes_test.copy()
            ab[:, rand] = 0.0
            control.append(base - _recall(predict(ab), y_test, n_classes))
        control = np.mean(control, axis=0) if draws else np.full(n_classes, np.nan)
        rows.append({
            "class": classes[c], "n_test": int((y_test == c).sum()), "latents": ";".join(map(str, chosen)),
            "selection_auroc_mean": float(np.mean(selection_auroc[c, chosen])),
            "recall": base[c], "drop_class": drop[c],
            "drop_others": float(np.mean(drop[others])) if len(others) else np.nan,
            "control_drop_class": control[c],
            "control_drop_others": float(np.mean(control[others])) if len(others) else np.nan,
            "m": int(m), "note": note,
        })
    table = pd.DataFrame(rows)
    table["specificity"] = table["drop_class"] - table["drop_others"]
    table["control_specificity"] = table["control_drop_class"] - table["control_drop_others"]
    summary = {"accuracy_reconstruction": accuracy, "m": int(m), "m_requested": int(m_requested), "note": note,
               "draws": int(draws),
               "drop_class_mean": float(table["drop_class"].mean()),
               "drop_others_mean": float(table["drop_others"].mean()),
               "control_drop_class_mean": float(table["control_drop_class"].mean()),
               "specificity_mean": float(table["specificity"].mean()),
               "control_specificity_mean": float(table["control_specificity"].mean()),
               "classes_more_specific_than_control": int((table["specificity"] > table["control_specificity"]).sum()),
               "classes": int(len(table))}
    return table, summary


def ablation_m(n_live: int, m: int) -> tuple[int, str]:
    """(m to use, note) for a node with `n_live` live latents when `m` are asked for.

    With fewer live latents than m, half of them (rounded down) are ablated, so
    the random control still draws sets other than the chosen one; with fewer
    than 2, the test is skipped (m 0). The note says which, and why.
    """
    if n_live >= m:
        return int(m), ""
    lowered = n_live // 2
    if lowered == 0:
        return 0, f"skipped: {n_live} live latent{'s' if n_live != 1 else ''}, too few to ablate and compare"
    return lowered, f"only {n_live} live latents: m lowered from {m} to {lowered} (half of them)"


def _skipped(classes: list[str], y_test: np.ndarray, m: int, note: str) -> tuple[pd.DataFrame, dict]:
    """A node too degenerate to ablate: one row per class present, the numbers missing and the reason stated."""
    nan = float("nan")
    present = [c for c in range(len(classes)) if (y_test == c).any()]
    rows = [{"class": classes[c], "n_test": int((y_test == c).sum()), "latents": "", "selection_auroc_mean": nan,
             "recall": nan, "drop_class": nan, "drop_others": nan, "control_drop_class": nan,
             "control_drop_others": nan, "m": 0, "note": note, "specificity": nan, "control_specificity": nan}
            for c in present]
    summary = {"accuracy_reconstruction": nan, "m": 0, "m_requested": int(m), "note": note, "skipped": True,
               "classes": len(rows)}
    return pd.DataFrame(rows), summary


def selection_aurocs(codes: np.ndarray, labels, classes: list[str]) -> np.ndarray:
    """AUROC [classes, latents] of every latent for every class on the selection clips."""
    lookup = {c: i for i, c in enumerate(classes)}
    labels = [str(v) for v in labels]
    unknown = sorted(set(labels) - set(lookup))
    if unknown:
        raise AtlasError(f"labels {unknown[:3]} are not among the probe's classes {classes}; rerun the probe")
    y = np.array([lookup[v] for v in labels], dtype=np.int64)
    return auroc_matrix(codes, y, len(classes))


def run_ablation(sae_dirs: dict[str, Path | str], probe_npz: Path | str, manifest, *, label: str,
                 test_clip_ids: list[str] | None = None, model: str = "", layer: int = -1, m: int = 8,
                 draws: int = 10, seed: int = 42, external: dict[str, dict] | None = None, log=None) -> dict:
    """The ablation test of one node for every SAE rep in `sae_dirs` ({rep: folder holding its latents.zarr}).

    Our SAEs decode with the sae.safetensors beside their latents; an imported SAE (a rep in `external`,
    {rep: {"format", "path"}}) with its format's reader (`external_decoder`).

    Test clips: `test_clip_ids` (the probe's, when its JSON lists them) or the
    manifest's test split; selection clips: every other clip. One activation per
    clip (crop 0).
    """
    from audiosae.atlas.build import load_clip_codes
    from audiosae.data.manifest import read_manifest

    weight, bias, classes = load_probe_weights(probe_npz)
    man = read_manifest(manifest)
    if label not in man.columns:
        raise AtlasError(f"the manifest has no label column {label!r} for the ablation's probe target")
    by_id = man.assign(clip_id=man["clip_id"].astype(str)).set_index("clip_id")
    if test_clip_ids is None:
        test_clip_ids = by_id.index[by_id["split"] == "test"].tolist()
    test_set = set(map(str, test_clip_ids))
    doc = {"model": model, "layer": int(layer), "target": label, "classes": classes, "m": int(m),
           "draws": int(draws), "seed": int(seed), "probe": str(probe_npz),
           "selection": "one-vs-rest AUROC on the clips outside the probe's test set", "reps": {}}
    for k, (rep, sae_dir) in enumerate(sae_dirs.items()):
        codes, ids = load_clip_codes(Path(sae_dir) / "latents.zarr", "codes", rep)
        is_test = np.array([c in test_set for c in ids])
        if not is_test.any() or is_test.all():
            raise AtlasError(f"{sae_dir}: the ablation needs test clips and other clips; got {int(is_test.sum())} "
                             f"test clips of {len(ids)}")
        values = by_id.loc[ids, label].astype(str).to_numpy()
        lookup = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(values[is_test]) - set(lookup))
        if unknown:
            raise AtlasError(f"test labels {unknown[:3]} are not among the probe's classes {classes}; rerun the probe")
        auc = selection_aurocs(codes[~is_test], values[~is_test], classes)
        live = (codes > 0).any(axis=0)
        ext = (external or {}).get(rep)
        decode = external_decoder(ext["format"], ext["path"]) if ext else sae_decoder(sae_dir)
        table, summary = ablation_effects(decode, codes[is_test],
                                          np.array([lookup[v] for v in values[is_test]]), weight, bias, classes,
                                          auc, live, m=m, draws=draws, seed=seed + k)
        if log and summary.get("skipped"):
            log(f"{rep}: {summary['note']}")
        elif log:
            if summary["note"]:
                log(f"{rep}: {summary['note']}")
            log(f"{rep}: reconstruction accuracy {summary['accuracy_reconstruction']:.3f}; mean recall drop "
                f"{summary['drop_class_mean']:.3f} for the class, {summary['drop_others_mean']:.3f} for the others, "
                f"{summary['control_drop_class_mean']:.3f} with random latents")
        doc["reps"][rep] = {**summary, "classes": table.to_dict(orient="records")}
    return doc
