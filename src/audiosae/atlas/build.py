"""One atlas job: a representation's store -> units.csv, summary.json and the page, in one folder.

Inputs are read once: the store's crop-0 item of every clip (train clips' first
crop, valid/test clips' only crop; no split is held out, nothing is fitted
here except the ground-truth read-out, which cross-validates), the manifest's
label columns, and the attributes table (eGeMAPS, plus ``factor_*`` columns on
the synthetic corpus).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from audiosae.atlas.stats import AtlasError, interpretable_share, unit_statistics

# Manifest columns that are not labels (issue 11's manifest: clip_id, path, group, <labels...>, split, ...).
NON_LABEL_COLUMNS = ("clip_id", "path", "group", "split", "duration_s", "sample_rate")
FACTOR_PREFIX = "factor_"


def label_columns(manifest: pd.DataFrame) -> list[str]:
    """The manifest's label columns, in file order."""
    return [c for c in manifest.columns if c not in NON_LABEL_COLUMNS]


def group_column(manifest: pd.DataFrame) -> str | None:
    """The column that groups clips for grouped folds: `group`, else `singer` (today's manifest), else None."""
    for col in ("group", "singer"):
        if col in manifest.columns:
            return col
    return None


def load_clip_codes(store, array: str, rep: str = "") -> tuple[np.ndarray, list[str]]:
    """The crop-0 row of every clip in `store` [clips, units] and the clip ids, in store order."""
    from audiosae.store import StoreError, open_store, read_array, read_index

    try:
        root = open_store(store)
    except StoreError as err:
        raise AtlasError(f"atlas for rep {rep!r}: {err}; this representation has not been computed "
                         f"(check the rep against the config's sparsities)") from err
    if array not in root:
        raise AtlasError(f"atlas for rep {rep!r}: store {store} has no array {array!r}")
    index = read_index(store)
    keep = (index["crop"] == 0).to_numpy()
    ids = index.loc[keep, "clip_id"].astype(str)
    if ids.duplicated().any():
        raise AtlasError(f"store {store}: clip {ids[ids.duplicated()].iloc[0]!r} has two crop-0 items; "
                         "delete the store and rerun its rule")
    return read_array(store, array, keep).astype(np.float64), ids.tolist()


def load_inputs(store, array: str, manifest, attributes, rep: str = ""):
    """(codes, clip ids, labels frame, attribute sets, groups), rows aligned to the store's clips."""
    from audiosae.data.manifest import read_manifest

    codes, clip_ids = load_clip_codes(store, array, rep)
    man = read_manifest(manifest)
    man = man.assign(clip_id=man["clip_id"].astype(str)).set_index("clip_id")
    missing = sorted(set(clip_ids) - set(man.index))
    if missing:
        raise AtlasError(f"store {store} holds {len(missing)} clips the manifest does not list (e.g. {missing[0]!r}): "
                         "the store is stale; rerun its rule")
    unlisted = sorted(set(man.index) - set(clip_ids))
    if unlisted:
        raise AtlasError(f"store {store} lacks {len(unlisted)} manifest clips (e.g. {unlisted[0]!r}): "
                         "the store is stale; rerun its rule")
    man = man.loc[clip_ids]
    labels = man[label_columns(man.reset_index())].astype(str).reset_index(drop=True)
    gcol = group_column(man.reset_index())
    groups = man[gcol].astype(str).to_numpy() if gcol else None

    from audiosae.attributes import read_attributes

    table = read_attributes(attributes)
    lacking = [c for c in clip_ids if c not in table.index]
    if lacking:
        raise AtlasError(f"{attributes}: no attributes for {len(lacking)} clips (e.g. {lacking[0]!r}); "
                         "rerun the attributes rule")
    table = table.loc[clip_ids].reset_index(drop=True)
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])
               and not pd.api.types.is_bool_dtype(table[c])]
    sets = {"egemaps": table[[c for c in numeric if not c.startswith(FACTOR_PREFIX)]]}
    factors = [c for c in numeric if c.startswith(FACTOR_PREFIX)]
    if factors:
        sets["factors"] = table[factors]
    return codes, clip_ids, labels, sets, groups


def ground_truth(stats, codes_sorted: np.ndarray, factors: pd.DataFrame, groups_sorted, folds: int) -> dict:
    """Matched unit, ρ and read-out R² of each true factor, and the MCC."""
    from audiosae.atlas.truth import matched_correlation, readout_targets, ridge_readout

    rho = stats.rho["factors"]
    match = matched_correlation(rho)
    r2 = (ridge_readout(codes_sorted, readout_targets(factors), groups_sorted, folds=folds)
          if groups_sorted is not None else np.full(factors.shape[1], np.nan))
    rows = [{"factor": name, "unit": int(match["unit"][j]), "rho": match["rho"][j], "readout_r2": r2[j]}
            for j, name in enumerate(factors.columns)]
    return {"mcc": match["mcc"], "note": match["note"], "factors": rows, "readout_r2_mean": float(np.nanmean(r2)) if np.isfinite(r2).any()
            else float("nan"), "folds_grouped_by": "group" if groups_sorted is not None else None}


def build_atlas(store, array: str, manifest, attributes, clips_dir, out_dir, *, model: str, layer: int, rep: str,
                auroc_threshold: float = 0.9, rho_threshold: float = 0.7, top_clips: int = 8, median_clips: int = 4,
                bins: int = 20, ridge_folds: int = 5, traces=None, log=None, rank_array: str | None = None,
                frames: tuple | None = None, recurrence: dict | None = None,
                recurrence_threshold: float = 0.7, causal: dict | None = None) -> dict:
    """Write out_dir/{units.csv, summary.json, index.html} atomically; return the summary.

    `traces`: optional callable (unit, clip ids) -> {clip id: activation over the clip's frames}
    (e.g. a frame-level SAE's), asked once per page for the clips each card shows; the card then
    draws each trace over the clip's spectrogram.
    Frame-level SAEs: `rank_array` (their ``codes_max``) ranks the top and median clips
    by the highest frame activation in the crop; `frames` = (frame store, SAE weights)
    gives the traces of every live unit's top clips (audiosae.frames.traces), encoded once.
    `recurrence` ({unit: [(other seed, best latent, cosine), ...]}, see `recurrence_of`): each card says whether its
    latent recurs in the SAEs of the other seeds (cosine ≥ `recurrence_threshold`).
    `causal`: the node's causal result (audiosae.causal.run, read with `causal_cards`): the tested cards get their
    badge and line on the page and in units.csv (columns ``causal``, ``causal_line``).
    """
    from audiosae.atlas.clips import read_clip_index
    from audiosae.atlas.page import page_data, render_page

    from audiosae.atomic import atomic_output
    from audiosae.jsonio import to_jsonable, write_json

    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    codes, clip_ids, labels, sets, groups = load_inputs(store, array, manifest, attributes, rep)
    say(f"{model} layer {layer} {rep}: {codes.shape[1]} units on {codes.shape[0]} clips, label columns "
        f"{list(labels.columns)}, attribute sets { {k: v.shape[1] for k, v in sets.items()} }")
    media = read_clip_index(clips_dir).set_index("clip_id")
    lacking = [c for c in clip_ids if c not in media.index]
    if lacking:
        raise AtlasError(f"{clips_dir}: no audio for {len(lacking)} clips (e.g. {lacking[0]!r}); rerun atlas_clips")

    rank = load_clip_codes(store, rank_array, rep)[0] if rank_array else None
    stats = unit_statistics(codes, clip_ids, labels, sets, sparse=rep != "original",
                            auroc_threshold=auroc_threshold, rho_threshold=rho_threshold, top_k=top_clips,
                            median_k=median_clips, bins=bins, rank_by=rank)
    t_stats = time.perf_counter() - t0
    summary = {"model": model, "layer": int(layer), "rep": rep, "clips": len(clip_ids),
               "label_columns": list(labels.columns), **interpretable_share(stats.table),
               "auroc_threshold": auroc_threshold, "rho_threshold": rho_threshold}
    say(f"{summary['live']} live units, {summary['clear']} clear ({summary['share']:.3f}); statistics in "
        f"{t_stats:.2f} s")
    if "factors" in sets:
        sort = np.argsort(np.asarray(clip_ids, dtype=object), kind="stable")
        g = groups[sort] if groups is not None else None
        summary["truth"] = ground_truth(stats, stats.activations, sets["factors"].iloc[sort].reset_index(drop=True),
                                        g, ridge_folds)
        say(f"ground truth: MCC {summary['truth']['mcc']:.3f}, read-out R² mean "
            f"{summary['truth']['readout_r2_mean']:.3f} {summary['truth']['note']}")
    summary = to_jsonable(summary)  # NaN (a degenerate node's missing match) -> null, for the page's strict JSON

    out_dir = Path(out_dir)
    cards = causal_cards(causal, rep, len(stats.table)) if causal is not None else None
    if cards is not None:
        stats.table["causal"] = [cards["cards"].get(u, ("", ""))[0] for u in stats.table["unit"]]
        stats.table["causal_line"] = [cards["cards"].get(u, ("", ""))[1] for u in stats.table["unit"]]
        summary["causal"] = {b: sum(1 for v, _ in cards["cards"].values() if v == b)
                             for b in ("causal", "not causal", "untestable")}
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        stats.table.to_csv(tmp / "units.csv", index=False, float_format="%.6g")
        write_json(tmp / "summary.json", summary)
        # Media by their path from where the page will be published (its temporary sibling has the same depth).
        rel = Path(os.path.relpath(os.path.abspath(clips_dir), os.path.abspath(out_dir))).as_posix()
        files = dict(zip(media.index, zip(media["audio"], media["image"], media["seconds"])))
        clip_media = {c: (f"{rel}/{files[c][0]}", f"{rel}/{files[c][1]}", float(files[c][2])) for c in clip_ids}
        if frames:
            from audiosae.frames.traces import crop0_traces

            live = ~(stats.table["dead"] | stats.table["constant"]).to_numpy()
            wanted: dict[str, set[int]] = {}
            for u in np.flatnonzero(live):
                for row in stats.top[u][stats.top[u] >= 0]:
                    wanted.setdefault(stats.clip_ids[row], set()).add(int(u))
            cache = crop0_traces(frames[0], frames[1], layer, wanted)
            say(f"{len(cache)} activation traces over {len(wanted)} clips")

            def traces(u, ids):
                return {c: cache[(u, c)] for c in ids if (u, c) in cache}
        shown = None
        if traces is not None:
            shown = {}
            for u in range(stats.top.shape[0]):
                rows = np.concatenate([stats.top[u], stats.median[u]])
                ids = [stats.clip_ids[r] for r in rows[rows >= 0]]
                if ids:
                    shown.update({(u, c): t for c, t in traces(u, ids).items()})
        data = page_data(stats, clip_media, model=model, layer=layer, rep=rep, summary=summary,
                         thresholds={"auroc": auroc_threshold, "rho": rho_threshold,
                                     "recurrence": recurrence_threshold}, traces=shown, recurrence=recurrence,
                         causal=cards)
        (tmp / "index.html").write_text(render_page(data), encoding="utf-8")
    summary["wall_time_s"] = time.perf_counter() - t0
    say(f"wrote {out_dir} in {summary['wall_time_s']:.2f} s")
    return summary


def causal_cards(doc: dict, rep: str, n_units: int) -> dict | None:
    """{"cards": {unit: (badge, line)}, "note"} of representation `rep` from its node's causal JSON; None when the
    job did not test `rep`."""
    res = (doc.get("reps") or {}).get(rep)
    if res is None:
        return None
    cards = {int(c["unit"]): (str(c["badge"]), str(c["line"])) for c in res.get("steering", [])
             if 0 <= int(c["unit"]) < n_units}
    top_n = (doc.get("settings") or {}).get("top_n")
    note = (f"The top {top_n} labelled cards of this page were steered in the network on {doc.get('n_clips')} test "
            f"clips (results/causal/{doc.get('model')}/layer{doc.get('layer')}.json)." if top_n else "")
    return {"cards": cards, "note": note}


def recurrence_of(stability_doc: dict, rep: str) -> tuple[dict | None, float]:
    """({unit: [(other seed, best latent, cosine), ...]}, threshold) of representation `rep` from its node's stability
    file (audiosae.controls.report.stability_node_doc); (None, 0.7) when `rep` has no seed group there."""
    from audiosae.layout import Rep

    r = Rep.parse(rep)
    for g in stability_doc.get("groups", []):
        if g["level"] == r.level and str(g["sparsity"]) == str(r.sparsity):
            out: dict[int, list] = {}
            for seed, rec in sorted(g["recurrence"].items(), key=lambda kv: int(kv[0])):
                for u, best, cos in zip(rec["latent"], rec["best"], rec["cosine"]):
                    out.setdefault(int(u), []).append((int(seed), int(best), float(cos)))
            return out, float(g["threshold"])
    return None, 0.7
