"""Export one of our SAEs in SAELens's disk format, with a model card.

``export_sae(sae_dir, out_dir, ...)`` writes ``out_dir`` (normally
``<sae_dir>/export``) holding:

- ``cfg.json`` and ``sae_weights.safetensors``: what ``sae_lens.SAE.load_from_disk``
  reads (SAELens >= 6);
- ``README.md``: a model card (model, its revision as the store the SAE was trained
  on records it, layer, pooling, corpus, sparsity, k, seed, training settings,
  metrics with their intervals, seed stability where measured, how to load it).

SAELens semantics followed (sae_lens 6.18.0, github jbloomAus/SAELens commit
91ca16c, and the same code in the sae-lens 6.54.12 wheel of our test extra):
``sae_lens/saes/sae.py`` ``SAE.process_sae_in`` computes
``x - b_dec * apply_b_dec_to_input`` (after ``normalize_activations``, which we
leave at "none"); ``sae_lens/saes/topk_sae.py`` ``TopKSAE.encode`` computes
``hidden_pre = sae_in @ W_enc + b_enc`` then ``TopK``: top-k of ``hidden_pre``,
then ReLU of those k values; ``decode`` is ``acts @ W_dec + b_dec``;
``jumprelu_sae.py``: ``relu(hidden_pre) * (hidden_pre > threshold)``;
``standard_sae.py``: ``relu(hidden_pre)``.

Ours (``audiosae.sae.model``): ``x_n = (x - mean) / std`` (only with
normalize_inputs), ``a = ReLU(W (x_n - b_pre) + b_enc)``, top-k of ``a``;
``x_hat = std * (W_d codes + b_pre) + mean``. Folding, exact in real arithmetic:

- ``b_dec = mean + std * b_pre`` and ``apply_b_dec_to_input = true``, so
  SAELens's ``x - b_dec`` is ``std * (x_n - b_pre)``;
- ``W_enc = (W / std).T`` [d_in, d_sae]; ``b_enc`` unchanged;
- ``W_dec = W_d.T * std`` [d_sae, d_in], so ``acts @ W_dec + b_dec`` is our ``x_hat``.

Top-k then ReLU keeps the same codes as ReLU then top-k (both keep the k
largest pre-activations when at least k are positive, else every positive one).
Our arch maps to SAELens's: topk -> "topk"; batchtopk (evaluated with its learnt
threshold) -> "jumprelu" with that threshold for every latent; relu_l1 -> "standard".
The tensors are computed in float64 and stored as float32, in numpy from the SAE's
safetensors file (the same IEEE operations torch would do, and no torch to import:
an export is a format conversion).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from audiosae.atomic import atomic_output
from audiosae.jsonio import read_json, write_json
from audiosae.sae.shape import SAEConfig

SAELENS_VERSION = "6.18.0"  # the SAELens source whose format and forward this export follows (see above)
ARCH_TO_SAELENS = {"topk": "topk", "batchtopk": "jumprelu", "relu_l1": "standard"}


class ExportError(RuntimeError):
    """An SAE folder that cannot be exported (missing file, untrained threshold)."""


def saelens_state(cfg: SAEConfig, state: dict[str, np.ndarray]) -> tuple[str, dict[str, np.ndarray], dict]:
    """(SAELens architecture, its tensors, its architecture-specific cfg keys) for one of our SAEs: its config and
    its state dict as `audiosae.sae.model.SparseAutoencoder.save` writes it (numpy arrays)."""
    arch = ARCH_TO_SAELENS[cfg.arch]

    def tensor(name):
        if name not in state:
            raise ExportError(f"the SAE's weights have no {name!r} (keys: {sorted(state)})")
        return np.asarray(state[name], dtype=np.float64)

    w = tensor("encoder.weight")  # [n_latents, input_dim]
    b_enc = tensor("encoder.bias")
    w_d = tensor("decoder.weight")  # [input_dim, n_latents]
    if cfg.normalize_inputs:
        mean, std = tensor("input_mean"), tensor("input_std")
    else:
        mean, std = np.zeros(cfg.input_dim), np.ones(cfg.input_dim)
    b_pre = tensor("b_pre") if cfg.pre_bias else np.zeros_like(mean)
    tensors = {
        "W_enc": (w / std[None, :]).T,
        "b_enc": b_enc,
        "W_dec": w_d.T * std[None, :],
        "b_dec": mean + std * b_pre,
    }
    extra: dict = {}
    if arch == "topk":
        extra = {"k": int(cfg.k), "rescale_acts_by_decoder_norm": False}
    elif arch == "jumprelu":
        threshold = float(tensor("threshold"))
        if not math.isfinite(threshold):
            raise ExportError("batchtopk SAE has no learnt threshold (it was never trained); cannot export it")
        tensors["threshold"] = np.full(cfg.n_latents, threshold, dtype=np.float64)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    return arch, tensors, extra


def saelens_cfg(cfg: SAEConfig, arch: str, extra: dict, *, model_name: str, hook_name: str,
                metadata: dict | None = None) -> dict:
    """The cfg.json document (SAELens SAEConfig.to_dict's keys)."""
    return {
        "architecture": arch,
        "d_in": int(cfg.input_dim),
        "d_sae": int(cfg.n_latents),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",  # our per-dimension standardisation is folded into W_enc, W_dec, b_dec
        "reshape_activations": "none",
        **extra,
        "metadata": {
            "sae_lens_version": SAELENS_VERSION,
            "sae_lens_training_version": None,  # trained by audiosae, not by SAELens
            "model_name": model_name,
            "hook_name": hook_name,
            "hook_head_index": None,
            "prepend_bos": False,
            **(metadata or {}),
        },
    }


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def encoder_provenance(model: str, model_spec: dict, store_attrs: dict | None) -> dict:
    """{"model_id", "revision", "revision_requested"} of the model an SAE was trained on.

    The store's attrs (what the encoder's ``describe()`` wrote when the vectors were
    extracted) name the weights that made them: a Hugging Face commit, or a packaged
    model's weights file and its sha256. Without a store, the config's revision (a
    request, not a record) or "not recorded".
    """
    attrs = store_attrs or {}
    requested = model_spec.get("revision")
    return {"model_id": attrs.get("model_id") or model_spec.get("id", model),
            "revision": attrs.get("revision") or (f"{requested} (requested; no store records it)" if requested
                                                   else "not recorded"),
            "revision_requested": attrs.get("revision_requested", requested)}


def seed_stability_of(doc: dict, *, level: str, sparsity, seed) -> tuple[list[dict], dict | None]:
    """(this SAE's seed pairs, its per-seed summary) in a node's stability document (rule stability).

    Pairs: ``[{other_seed, n_live, n_live_other, mean_cos, share_matched, baseline_mean_cos,
    baseline_share_matched, threshold}]`` for every pair of seeds that includes this SAE's
    seed, in the group of its level and sparsity; both empty when it was not measured.
    """
    if seed is None or sparsity is None:
        return [], None
    for group in doc.get("groups", []):
        if group.get("level") != level or float(group.get("sparsity")) != float(sparsity):
            continue
        pairs = []
        for p in group.get("pairs", []):
            if int(seed) not in (int(p["seed_a"]), int(p["seed_b"])):
                continue
            mine, other = ("a", "b") if int(p["seed_a"]) == int(seed) else ("b", "a")
            pairs.append({"other_seed": int(p[f"seed_{other}"]), "n_live": p.get(f"n_{mine}"),
                          "n_live_other": p.get(f"n_{other}"), "mean_cos": p.get("mean_cos"),
                          "share_matched": p.get("share_matched"), "baseline_mean_cos": p.get("baseline_mean_cos"),
                          "baseline_share_matched": p.get("baseline_share_matched"),
                          "threshold": p.get("threshold", group.get("threshold"))})
        summary = next((s for s in group.get("per_seed", []) if int(s.get("seed", -1)) == int(seed)), None)
        return pairs, summary
    return [], None


def model_card(*, rep: str, model: str, model_spec: dict, layer: int, level: str, pooling: str, corpus: str,
               sae_config: dict, training: dict, metrics: dict, probes: list[dict], atlas: dict | None,
               seed_stability: list[dict] | None, cfg: dict, provenance: dict | None = None) -> str:
    """README.md of an export folder (Markdown)."""
    provenance = provenance or encoder_provenance(model, model_spec, None)
    model_id = provenance["model_id"]
    revision = f"`{provenance['revision']}`"
    requested = provenance.get("revision_requested")
    if requested and requested not in provenance["revision"]:
        revision += f" (requested `{requested}`)"
    splits = metrics.get("splits", {})
    pooling_text = ("clip: mean over the frames of each crop" if level == "clip"
                    else f"frame: every frame (a crop's code for probes: the {pooling} of its frames' codes)")
    lines = [
        f"# audiosae SAE `{rep}`: {model} layer {layer}",
        "",
        f"A {sae_config['arch']} sparse autoencoder trained by audiosae (a Snakemake workflow) on hidden state {layer} of "
        f"`{model_id}`, exported in SAELens's disk format (`cfg.json` + `sae_weights.safetensors`).",
        "",
        "## What it models",
        "",
        "| | |", "|---|---|",
        f"| model | `{model_id}` (audiosae name `{model}`, source `{model_spec.get('source', '?')}`) |",
        f"| revision | {revision} |",
        f"| layer | hidden state {layer} (`{cfg['metadata']['hook_name']}`) |",
        f"| pooling | {pooling_text} |",
        f"| corpus | {corpus}; trained on the train split, epoch chosen on the valid split |",
        f"| width | d_in {sae_config['input_dim']}, d_sae {sae_config['n_latents']} |",
        f"| sparsity | {training.get('sparsity')} (k = {sae_config['k']} active codes per "
        f"{'vector' if sae_config['arch'] == 'topk' else 'vector on average'}) |",
        f"| seed | {training.get('seed')} |",
        "",
        "## Training",
        "",
        "| setting | value |", "|---|---|",
    ]
    for key in ("arch", "pre_bias", "unit_norm_decoder", "auxk", "auxk_k", "l1", "normalize_inputs"):
        lines.append(f"| {key} | {sae_config.get(key)} |")
    for key, value in training.items():
        if key not in ("model", "layer", "sparsity", "seed", "store"):
            lines.append(f"| {key} | {value} |")
    lines.append(f"| epochs run / best epoch | {metrics.get('epochs_run')} / {metrics.get('best_epoch')} |")
    lines += ["", "## Metrics", "",
              "Reconstruction (whole split; FVU = squared error / variance about the split mean; in the normalised "
              "space when normalize_inputs is on). Dead share: latents that never fire on the train split.", "",
              "| split | FVU | cosine | L0 | dead share |", "|---|---|---|---|---|"]
    for split in ("train", "valid", "test"):
        s = splits.get(split, {})
        lines.append(f"| {split} | {_fmt(s.get('fvu'))} | {_fmt(s.get('cosine'))} | {_fmt(s.get('l0'))} | "
                     f"{_fmt(s.get('dead_fraction'))} |")
    if probes:
        lines += ["", "Linear probes on this SAE's codes (test clips; interval: bootstrap over test clips).", "",
                  "| target | accuracy | interval |", "|---|---|---|"]
        for p in probes:
            ci = p.get("accuracy_ci") or [None, None]
            level_pct = f"{100 * p['ci']:g} %" if p.get("ci") else ""
            lines.append(f"| {p.get('target')} | {_fmt(p.get('accuracy'))} | [{_fmt(ci[0])}, {_fmt(ci[1])}] "
                         f"{level_pct} |")
    if atlas:
        dead = f"; {atlas['dead']} dead" if atlas.get("dead") is not None else ""
        lines += ["", f"Interpretable share ({atlas.get('source', 'latent atlas')}): {atlas.get('clear')} of "
                  f"{atlas.get('live')} live units have a clear label ({_fmt(atlas.get('share'))}){dead}."]
    if seed_stability:
        threshold = _fmt(seed_stability[0].get("threshold"))
        lines += ["", f"Seed stability: this SAE against the same SAE trained with another seed. The live latents' "
                  f"decoder directions are matched one to one (Hungarian, by cosine). Reported: the mean matched "
                  f"cosine, and the share of matched pairs at cosine >= {threshold}, each beside the same numbers "
                  f"for random directions of the same counts and width (the baseline).", "",
                  "| other seed | live latents (this / other) | mean matched cosine | baseline | share matched | "
                  "baseline |", "|---|---|---|---|---|---|"]
        for p in seed_stability:
            lines.append(f"| {p['other_seed']} | {p.get('n_live')} / {p.get('n_live_other')} | "
                         f"{_fmt(p.get('mean_cos'))} | {_fmt(p.get('baseline_mean_cos'))} | "
                         f"{_fmt(p.get('share_matched'))} | {_fmt(p.get('baseline_share_matched'))} |")
    else:
        lines += ["", "Seed stability: not measured for this SAE (no other seed of it was trained; see "
                  "controls.seeds)."]
    lines += [
        "", "## Load it", "",
        "With SAELens (>= 6):", "", "```python",
        "from sae_lens import SAE", "",
        "sae = SAE.load_from_disk(\"path/to/export\")",
        "codes = sae.encode(x)  # x: [batch, d_in] vectors of the layer above, pooled as above",
        "```", "",
        "Our input normalisation and pre-bias are folded into `W_enc`, `W_dec` and `b_dec` "
        "(`apply_b_dec_to_input: true`, `normalize_activations: \"none\"`), so `encode` gives exactly "
        "audiosae's codes and `decode` its reconstruction in the layer's own space.", "",
        "With audiosae (the original checkpoint, one folder up):", "", "```python",
        "from audiosae.sae.model import SparseAutoencoder", "",
        "sae = SparseAutoencoder.load(\"path/to/sae.safetensors\")  # config.json beside it",
        "codes = sae.encode(x)", "```", "",
        "Or analyse this export as an external SAE of another study "
        f"(`sae.external: [{{name: ..., model: {model}, layer: {layer}, format: saelens, path: path/to/export, "
        f"level: {level}}}]`, see docs/interop.md).", "",
    ]
    return "\n".join(lines)


def export_sae(sae_dir: Path | str, out_dir: Path | str | None = None, *, model: str, layer: int,
               model_spec: dict | None = None, level: str = "clip", pooling: str = "mean", corpus: str = "?",
               rep: str | None = None, probe_paths: list[Path | str] = (), atlas_summary: Path | str | None = None,
               store: Path | str | None = None, stability: Path | str | None = None) -> Path:
    """Write ``out_dir`` (default ``<sae_dir>/export``) for the SAE in ``sae_dir``; returns its path.

    `store`: the embeddings (clip) or frame store the SAE was trained on; its attrs give the model's id and
    revision. `stability`: the node's seed-stability document (rule stability), read where it measured this SAE.
    """
    from safetensors.numpy import load_file, save_file

    from audiosae.store import read_attrs

    sae_dir = Path(sae_dir)
    out_dir = Path(out_dir) if out_dir is not None else sae_dir / "export"
    for name in ("sae.safetensors", "config.json", "metrics.json"):
        if not (sae_dir / name).exists():
            raise ExportError(f"{sae_dir / name}: not found; export reads a finished SAE folder")
    model_spec = model_spec or {}
    config = read_json(sae_dir / "config.json")
    sae_cfg = SAEConfig.from_dict(config)
    state = load_file(str(sae_dir / "sae.safetensors"))
    metrics = read_json(sae_dir / "metrics.json")
    training = dict(config.get("training", {}))
    sparsity = training.get("sparsity", metrics.get("sparsity"))
    rep = rep or f"{'fsae' if level == 'frame' else 'sae'}{sparsity}"
    if store is not None and not Path(store).exists():
        raise ExportError(f"{store}: not found; the store the SAE was trained on names the model's revision")
    provenance = encoder_provenance(model, model_spec, read_attrs(store) if store is not None else None)
    pairs, seed_summary = (seed_stability_of(read_json(stability), level=level, sparsity=sparsity,
                                             seed=training.get("seed")) if stability else ([], None))
    arch, tensors, extra = saelens_state(sae_cfg, state)
    hook_name = f"hidden_states.{layer}" + (".clip_mean" if level == "clip" else "")
    cfg = saelens_cfg(sae_cfg, arch, extra, model_name=model_spec.get("id", model), hook_name=hook_name, metadata={
        "model_class_name": model_spec.get("source"),
        "model_revision": provenance["revision"],
        "dataset_path": corpus,
        "audiosae": {"model": model, "layer": int(layer), "rep": rep, "level": level,
                     "pooling": pooling if level == "frame" else "mean over each crop's frames",
                     "sparsity": sparsity, "seed": training.get("seed"), "arch": sae_cfg.arch},
    })
    probes = [read_json(p) for p in probe_paths]
    atlas = read_json(atlas_summary) if atlas_summary else None
    if atlas is None and seed_summary is not None:  # an extra seed has no atlas page; rule stability measured it
        atlas = {**seed_summary, "source": "computed as the latent atlas does, by rule stability"}
    card = model_card(rep=rep, model=model, model_spec=model_spec, layer=int(layer), level=level, pooling=pooling,
                      corpus=corpus, sae_config=sae_cfg.to_dict(), training={"sparsity": sparsity, **training},
                      metrics=metrics, probes=probes, atlas=atlas, seed_stability=pairs, cfg=cfg,
                      provenance=provenance)
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / "sae_weights.safetensors"))
        write_json(tmp / "cfg.json", cfg, indent=2)
        (tmp / "README.md").write_text(card)
    return out_dir
