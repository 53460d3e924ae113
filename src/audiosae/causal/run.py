"""One node's causal job: erasure curves of its SAEs and steering of its labelled cards, on one shared clean pass.

The model is loaded once; the test clips (every probe target's test clips, first crop:
`audiosae.splice.data.splice_clips`) run up to the patched layer once per batch
(`Passes`), then once more from that layer per intervention. Cost, in resumes of the
test clips from the layer on (what `passes` in the result counts):

- erasure, per SAE and target: 1 clean + classes × (grid points below all live latents)
  + draws × (grid points below all live latents) + 1 (all live latents, shared);
- steering, per representation: cards × multiples × (1 + random directions).

Which cards: the top `top_n` labelled live cards of each representation's atlas page, by
the page's own order (clarity), recomputed here with the page's statistic and settings
(`audiosae.atlas.stats.unit_statistics` on the same store and manifest), so the card and
the test agree. Writes ``results/causal/<model>/layer<L>.json``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import torch

from audiosae.causal import erasure as er
from audiosae.causal import steering as st
from audiosae.causal.passes import Passes
from audiosae.splice import patches as P
from audiosae.splice.run import load_sae

FRAME_SAMPLE = 20000  # train frames a frame SAE's α is measured on (spread evenly over the train clips)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _train_rows(store, array: str, manifest: pd.DataFrame, target: dict | None, split_params: dict):
    """(values, labels or None) of the store's rows whose clip is a train clip (of `target`'s split, or the corpus's)."""
    from audiosae.data.corpus import target_splits
    from audiosae.store import read_array, read_index

    index = read_index(store)
    ids = index["clip_id"].astype(str)
    man = manifest.assign(clip_id=manifest["clip_id"].astype(str)).reset_index(drop=True)
    if target is None:
        split = pd.Series(man["split"].astype(str).to_numpy(), index=man["clip_id"])
        labels = None
    else:
        lab = target["label"]
        m = man.assign(**{lab: man[lab].astype(str)})
        split = pd.Series(target_splits(m, target, split_params).astype(str).to_numpy(), index=m["clip_id"])
        labels = pd.Series(m[lab].to_numpy(), index=m["clip_id"]).reindex(ids).to_numpy()
    mask = split.reindex(ids).to_numpy() == "train"
    values = read_array(store, array, np.flatnonzero(mask)).astype(np.float64)
    return values, (labels[mask] if labels is not None else None)


def frame_alphas(sae, frames_store, layer: int, device, limit: int = FRAME_SAMPLE) -> np.ndarray:
    """[latents] 95th percentile of each latent's activation over the train frames where it fires."""
    from audiosae.frames.store import clip_index, layer_array

    arr = layer_array(frames_store, layer)
    clips = clip_index(frames_store)
    train = clips[(clips["split"] == "train") & (clips["n_frames"] > 0)]
    per_clip = max(1, -(-limit // max(len(train), 1)))
    rows = []
    for r in train.itertuples(index=False):
        take = np.unique(np.linspace(0, r.n_frames - 1, min(per_clip, r.n_frames)).round().astype(int))
        rows.append(np.asarray(arr[r.first_frame : r.first_frame + r.n_frames])[take])
    x = torch.from_numpy(np.concatenate(rows).astype(np.float32))
    with torch.no_grad():
        codes = torch.cat([sae.encode(x[i : i + 4096].to(device)).cpu() for i in range(0, len(x), 4096)]).numpy()
    return positive_p95(codes)


def positive_p95(codes: np.ndarray) -> np.ndarray:
    """[latents] 95th percentile of each column over its positive entries (0 for a column never positive)."""
    out = np.zeros(codes.shape[1])
    for j in range(codes.shape[1]):
        v = codes[codes[:, j] > 0, j]
        if len(v):
            out[j] = float(np.quantile(v, 0.95))
    return out


def attribute_readouts(names, embeddings: str, last: int, manifest: pd.DataFrame, attributes: str,
                       min_r2: float = 0.1) -> dict:
    """{attribute: pooled [N, D] -> value in train sd}: ridge read-outs of the clean last layer, fitted on the train
    clips and checked on the valid clips (a str saying why where the output cannot read the attribute)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from audiosae.attributes import read_attributes
    from audiosae.store import read_array, read_index

    if not names:
        return {}
    index = read_index(embeddings)
    ids = index["clip_id"].astype(str).to_numpy()
    x = read_array(embeddings, f"layer{last}").astype(np.float64)
    split = pd.Series(manifest["split"].astype(str).to_numpy(), index=manifest["clip_id"].astype(str))
    sp = split.reindex(ids).to_numpy()
    table = read_attributes(attributes)
    mean, scale = x[sp == "train"].mean(0), x[sp == "train"].std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    out = {}
    for name in names:
        if name not in table.columns:
            out[name] = f"no attribute {name!r} in {attributes}"
            continue
        y = table[name].reindex(ids).to_numpy(dtype=np.float64)
        tr, va = (sp == "train") & np.isfinite(y), (sp == "valid") & np.isfinite(y)
        if tr.sum() < 5 or va.sum() < 3:
            out[name] = f"too few train or valid clips with {name}"
            continue
        mu, sd = y[tr].mean(), y[tr].std()
        if sd <= 0:
            out[name] = f"{name} is constant on the train clips"
            continue
        model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit((x[tr] - mean) / scale, (y[tr] - mu) / sd)
        r2 = float(r2_score((y[va] - mu) / sd, model.predict((x[va] - mean) / scale)))
        if r2 < min_r2:
            out[name] = f"the output's linear read-out of {name} has R² {r2:.2f} on the valid clips (< {min_r2:g})"
            continue
        out[name] = (lambda z, m=model: m.predict((np.asarray(z) - mean) / scale))
    return out


def causal_node(*, model: str, model_cfg: dict, layer: int, weights_dir, manifest, root, embeddings: str,
                frames: str | None, attributes: str, reps: list[dict], targets: list[dict], split_params: dict,
                audio: dict, atlas: dict, causal: dict, out_path, device: str = "auto", dtype: str = "float32",
                batch_size: int = 16) -> dict:
    """Erasure and steering on one node; `reps`: [{rep, level (original|clip|frame), store, array, dir}]."""
    from audiosae.atlas.build import load_inputs
    from audiosae.atlas.stats import unit_statistics
    from audiosae.data.manifest import read_manifest
    from audiosae.devices import resolve_device
    from audiosae.encoders.registry import compute_dtype, model_facts
    from audiosae.encoders.twin import calibrate_if_needed, is_twin_name
    from audiosae.jsonio import to_jsonable, write_json
    from audiosae.splice.data import audio_batches, fit_output_probes, splice_clips

    t0, c0 = time.perf_counter(), time.process_time()
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    man = read_manifest(manifest)
    enc = model_facts(model, model_cfg, weights_dir).build(dev, compute_dtype(dtype, dev))
    calibrate_if_needed(enc, man, root, audio["crop_seconds"], audio["crop_seed"])
    last = enc.num_hidden_states - 1
    width = int(enc.layer_widths[layer])
    clips = splice_clips(man, targets, split_params, audio["crop_seconds"], audio["crop_seed"])
    by_label = {t["label"]: t for t in targets}
    erasure_targets = [by_label[t] for t in (causal["erasure_targets"] or list(by_label)) if t in by_label]
    primary = (erasure_targets or targets)[0]["label"]
    if causal.get("clips_per_class"):
        clips = subsample(clips, primary, int(causal["clips_per_class"]), causal["seed"])
    items = clips.items
    batches = [b for _, b in audio_batches(items, enc.sample_rate, audio["crop_seconds"], batch_size, root)]
    passes = Passes(enc, batches, layer)
    t_prefix = time.perf_counter() - t0
    _say(f"{model} layer {layer}: {len(items)} test clips up to the layer in {t_prefix:.1f} s")
    probes = fit_output_probes(embeddings, last, man, targets, split_params)
    probes.update(label_probes(embeddings, last, man, [t["label"] for t in targets], split_params))
    shares, draws, seed, resamples = causal["erasure_shares"], causal["erasure_draws"], causal["seed"], \
        causal["resamples"]
    doc = {"model": model, "twin": bool(is_twin_name(model)), "layer": int(layer), "n_clips": int(len(items)),
           "clips_stratified_by": primary if causal.get("clips_per_class") else None,
           "settings": {k: causal[k] for k in sorted(causal)}, "reps": {}}
    pitch_output = passes.clean.pitch is not None

    for spec in reps:
        rep, level = spec["rep"], spec["level"]
        t_rep = time.perf_counter()
        n_before = passes.passes
        sae = load_sae({"dir": spec["dir"]}, width, dev).eval() if level != "original" else None
        codes, clip_ids, labels, sets, _ = load_inputs(spec["store"], spec["array"], manifest, attributes, rep)
        stats = unit_statistics(codes, clip_ids, labels, sets, sparse=level != "original",
                                auroc_threshold=atlas["auroc_threshold"], rho_threshold=atlas["rho_threshold"])
        table = stats.table
        live = ~(table["dead"] | table["constant"]).to_numpy()
        out = {"level": level, "n_units": int(len(table)), "n_live": int(live.sum()), "erasure": None,
               "steering": []}

        # ---- erasure (SAEs only: the layer's own units are not a dictionary with an error term)
        if sae is not None:
            curves, summary = [], []
            for t in erasure_targets:
                probe = probes[t["label"]]
                x_train, y_lab = _train_rows(spec["store"], spec["array"], man, t, split_params)
                y_train = probe.labels(y_lab)
                ok = y_train >= 0
                ranking = er.rank_latents(x_train[ok], y_train[ok], len(probe.classes), live)
                y = probe.labels(items[t["label"]])
                mask = clips.test_mask(t["label"]) & (y >= 0)

                def predict(idx, probe=probe, mask=mask, sae=sae, level=level):
                    return probe.predict(passes.removed(sae, level, idx).pooled[mask])

                c, s = er.erasure_curves(predict, y[mask], probe.classes, ranking, live, shares, target=t["label"],
                                         draws=draws, seed=seed, resamples=resamples)
                curves.append(c)
                summary.append(s)
            out["erasure"] = {"curves": pd.concat(curves).to_dict("records") if curves else [],
                              "summary": pd.concat(summary).to_dict("records") if summary else []}

        # ---- steering on the top labelled cards
        readers = attribute_readouts(sorted(set(table.loc[table["clear"] & ~table["clear_by_auroc"],
                                                          "best_attribute"].astype(str))),
                                     embeddings, last, man, attributes)
        tests = st.card_tests(table, causal["top_n"], pitch_output=pitch_output, probes=probes,
                              attribute_readouts=readers, auroc_threshold=atlas["auroc_threshold"])
        if tests:
            alphas, directions = _alphas_and_directions(spec, sae, level, width, layer, man, split_params, frames,
                                                        dev, [t.unit for t in tests])
        for k, test in enumerate(tests):
            def run(v):
                vec = torch.as_tensor(v, dtype=torch.float32)
                return passes.run(lambda h: h + vec.to(h))

            res = st.steer(test, run, passes.clean, directions.get(test.unit), alphas.get(test.unit, 0.0),
                           causal["multiples"], n_random=causal["random_directions"], seed=seed + 1000 * k + 1,
                           resamples=resamples)
            out["steering"].append(res)
        out["passes"] = passes.passes - n_before
        out["wall_s"] = round(time.perf_counter() - t_rep, 2)
        badges = pd.Series([s["badge"] for s in out["steering"]]).value_counts().to_dict()
        _say(f"  {rep}: {out['n_live']} live units; {out['passes']} passes in {out['wall_s']} s; cards {badges}")
        doc["reps"][rep] = out

    doc["passes"] = passes.passes
    doc["prefix_s"] = round(t_prefix, 2)
    doc["wall_s"] = round(time.perf_counter() - t0, 2)
    doc["cpu_s"] = round(time.process_time() - c0, 2)  # this process's CPU time: the cost on a shared machine
    write_json(out_path, to_jsonable(doc))
    return doc


def label_probes(embeddings: str, last: int, manifest: pd.DataFrame, targets: list[str], split_params: dict) -> dict:
    """Output-level probes of the manifest's other label columns (the corpus split), so that a card labelled by one
    of them (context, say) can be read at the output too; a column the corpus split cannot train is left out."""
    from audiosae.atlas.build import label_columns
    from audiosae.splice.data import fit_output_probes

    out = {}
    for col in label_columns(manifest):
        if col in targets:
            continue
        try:
            out.update(fit_output_probes(embeddings, last, manifest, [{"label": col, "split": "corpus"}],
                                         split_params))
        except (ValueError, KeyError) as err:
            _say(f"  no output-level probe of '{col}': {err}")
    return out


def subsample(clips, target: str, per_class: int, seed: int):
    """The splice clips reduced to at most `per_class` test clips of each class of `target` (a seeded draw among
    each class's test clips, in clip-id order): what bounds a causal job's cost (causal.clips_per_class)."""
    from dataclasses import replace

    items = clips.items
    test = clips.test_mask(target)
    keep = np.zeros(len(items), dtype=bool)
    rng = np.random.default_rng(int(seed))
    for value in sorted(items.loc[test, target].astype(str).unique()):
        rows = items.index[test & (items[target].astype(str) == value).to_numpy()]
        rows = rows[np.argsort(items.loc[rows, "clip_id"].to_numpy(), kind="stable")]
        keep[rng.permutation(rows.to_numpy())[:per_class]] = True
    return replace(clips, items=items[keep].reset_index(drop=True))


def _alphas_and_directions(spec, sae, level, width, layer, man, split_params, frames, dev, units):
    """({unit: α}, {unit: direction [D]}) of the cards' units (see audiosae.causal.steering)."""
    if level == "original":
        x, _ = _train_rows(spec["store"], spec["array"], man, None, split_params)
        q95, q50 = np.quantile(x, 0.95, axis=0), np.quantile(x, 0.5, axis=0)
        return ({u: float(q95[u] - q50[u]) for u in units}, {u: np.eye(width)[u] for u in units})
    if level == "frame":
        alpha = frame_alphas(sae, frames, layer, dev)
    else:
        x, _ = _train_rows(spec["store"], spec["array"], man, None, split_params)
        alpha = positive_p95(x)
    idx = torch.as_tensor(units, dtype=torch.long)
    with torch.no_grad():
        onehot = torch.zeros(len(units), len(alpha), device=dev)
        onehot[torch.arange(len(units)), idx.to(dev)] = 1.0
        d = P.contribution(sae, onehot).cpu().double().numpy()
    return {u: float(alpha[u]) for u in units}, {u: d[i] for i, u in enumerate(units)}
