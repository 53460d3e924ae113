# Target lists, input functions and wildcard constraints shared by every stage.
# Rule files never read `config` inside a script: what changes a result reaches
# its job as a param (built here) or an input file.

import json
from pathlib import Path

from audiosae.config import ConfigError
from audiosae.data.corpus import corpus_params
from audiosae.encoders.base import FRAME
from audiosae.encoders.registry import model_facts, needs_depth, resolve_layers
from audiosae.interop.external import external_of, external_reps


MODELS = config["models"]
SPARSITIES = [str(s) for s in config["sae"]["sparsities"]]
LEVELS = config["sae"]["levels"]
CLIP_LEVEL = "clip" in LEVELS
FRAME_LEVEL = "frame" in LEVELS
CLIP_REPS = [f"sae{s}" for s in SPARSITIES] if CLIP_LEVEL else []
# Frame SAEs at sae.frame.sparsities (a subset of sae.sparsities; all of them by default).
FRAME_SPARSITIES = [s for s in SPARSITIES if config["sae"]["frame"]["sparsities"] is None
                    or float(s) in config["sae"]["frame"]["sparsities"]]
FRAME_REPS = [f"fsae{s}" for s in FRAME_SPARSITIES] if FRAME_LEVEL else []
# Every representation name of the study; a node's own list is reps_of(model, layer).
REPS = ["original"] + CLIP_REPS + FRAME_REPS + [f"ext-{e['name']}" for e in config["sae"]["external"]]
CORPUS = config["data"]["corpus"]
SYNTHETIC = CORPUS == "synthetic"
TARGETS = [t["label"] for t in config["probe"]["targets"]]  # probe targets, in config order


# ---------------------------------------------------------------- data


def get_corpus_root():
    """What the manifest is made from: VocalSet's or the synthetic corpus's folder (its clips, and the synthetic
    corpus's true factors), the user's table or folder tree. Rules that read clips take it as an input."""
    if CORPUS == "vocalset":
        return "resources/VocalSet"
    if CORPUS == "synthetic":
        return "resources/synthetic"
    if CORPUS == "table":
        return config["data"]["table"]["file"]
    return config["data"]["folders"]["root"]


def get_corpus_params():
    """Every data.* setting that changes the manifest (corpus kind, its settings, split fractions and seed)."""
    return corpus_params(config["data"])


def get_synthetic_corpus():
    """The synthetic corpus's folder (its true factors and f0 tracks join the attributes), else nothing."""
    return "resources/synthetic" if SYNTHETIC else []


# ---------------------------------------------------------------- models and layers


def get_weights_dir(model):
    """Where download_model puts a model's snapshot (None for packaged models)."""
    facts = model_facts(model, MODELS[model])
    return f"resources/models/{model}" if facts.needs_weights else None


def get_facts(model):
    """What the encoder registry knows about `model` (its widths need the snapshot for HF models)."""
    return model_facts(model, MODELS[model], get_weights_dir(model))


def get_layers(model):
    """Hidden-state indices analysed for `model`, as non-negative ints.

    `layers: all` or a negative index needs the model's depth. A Hugging Face
    model knows it only once downloaded, so then this waits for download_model
    (a checkpoint): call it from input functions, never at parse time.
    """
    spec = MODELS[model]["layers"]
    depth = get_facts(model).depth()
    if depth is None and needs_depth(spec):
        checkpoints.download_model.get(model=model)  # raises until the snapshot exists; Snakemake then re-evaluates
        depth = get_facts(model).depth()
        if depth is None:
            raise ConfigError(f"model '{model}': resources/models/{model}/config.json has no num_hidden_layers; "
                              f"list its layers explicitly (config key 'models.{model}.layers')")
    if depth is not None:
        return resolve_layers(model, spec, depth)
    return sorted(set(spec))


def get_model_params(wildcards):
    """Everything about a model that changes its embeddings (layers excluded: all are stored)."""
    cfg = {k: v for k, v in MODELS[wildcards.model].items() if k not in ("layers", "batch_size")}
    return cfg


def get_model_weights(wildcards):
    """Downloaded weights folder for Hugging Face models; packaged models need none."""
    return get_weights_dir(wildcards.model) or []


def get_extraction_batch_size(wildcards):
    return MODELS[wildcards.model].get("batch_size", config["extraction"]["batch_size"])


def get_audio_params(wildcards=None):
    return {
        "crop_seconds": config["audio"]["crop_seconds"],
        "train_crops": config["audio"]["train_crops"],
        "crop_seed": config["audio"]["crop_seed"],
    }


# ---------------------------------------------------------------- SAE codes and representations


def get_rep_store(wildcards):
    """The store that holds representation `rep` of (model, layer): original, sae<s> (clip) or fsae<s> (frame)."""
    if wildcards.rep == "original":
        return f"results/embeddings/{wildcards.model}.zarr"
    if wildcards.rep.startswith("ext-"):  # an SAE trained elsewhere (sae.external, rules/interop.smk)
        return f"results/ext/{wildcards.model}/layer{wildcards.layer}/{wildcards.rep[len('ext-'):]}/latents.zarr"
    level, s = ("fsae", wildcards.rep[len("fsae"):]) if wildcards.rep.startswith("fsae") else ("sae", wildcards.rep[len("sae"):])
    return f"results/{level}/{wildcards.model}/layer{wildcards.layer}/sparsity{s}/latents.zarr"


def get_rep_array(wildcards):
    """Name of the array inside get_rep_store's store."""
    return f"layer{wildcards.layer}" if wildcards.rep == "original" else "codes"


# ---------------------------------------------------------------- target lists


# Input functions (they take `wildcards`): with `layers: all` on a Hugging Face
# model, the nodes are known only after its download (see get_layers).


def nodes():
    """Every analysed (model, layer) pair."""
    return [(m, l) for m in MODELS for l in get_layers(m)]


def is_frame_layer(model, layer):
    """Whether hidden state `layer` of `model` has one vector per frame (its encoder module says)."""
    resolution = get_facts(model).layer_resolution()
    return resolution is None or resolution[int(layer)] == FRAME


def frame_nodes():
    """The nodes that get frame-level SAEs: every frame-resolution node when sae.levels has frame."""
    return [(m, l) for m, l in nodes() if FRAME_LEVEL and is_frame_layer(m, l)]


def reps_of(model, layer):
    """Representations of one node: original, the clip SAEs, and the frame SAEs where the layer has frames."""
    frame = FRAME_REPS if FRAME_LEVEL and is_frame_layer(model, layer) else []
    return ["original"] + CLIP_REPS + frame + external_reps(config, model, layer)


def node_reps():
    return [(m, l, r) for m, l in nodes() for r in reps_of(m, l)]


def sae_dirs(wildcards=None):
    clip = [f"results/sae/{m}/layer{l}/sparsity{s}" for m, l in nodes() for s in SPARSITIES] if CLIP_LEVEL else []
    return clip + [f"results/fsae/{m}/layer{l}/sparsity{s}" for m, l in frame_nodes() for s in FRAME_SPARSITIES]


def sae_metrics(wildcards=None):
    return [f"{d}/metrics.json" for d in sae_dirs() + external_dirs()]


def probe_results(wildcards=None):
    return [f"results/probe/{t}/{m}/layer{l}/{r}.json" for t in TARGETS for m, l, r in node_reps()]


def disentangle_results(wildcards=None):
    return [f"results/disentangle/{m}/layer{l}/{r}.json" for m, l, r in node_reps()]


def frame_acoustics_results(wildcards=None):
    """Acoustics over time of each frame node: the layer's own dimensions and each frame SAE."""
    return [f"results/frame_acoustics/{m}/layer{l}/{r}.json" for m, l in frame_nodes() for r in ["original"] + FRAME_REPS]


def embedding_stores():
    return [f"results/embeddings/{m}.zarr" for m in MODELS]


# ---- probe stage


def get_target_splits():
    """{target: how it is split}, in probe.targets order: the corpus split, or a seeded random split (with what
    shapes it)."""
    data = config["data"]
    out = {}
    for t in config["probe"]["targets"]:
        out[t["label"]] = ({"strategy": "corpus"} if t["split"] == "corpus" else
                           {"strategy": "random", "valid_fraction": data["valid_fraction"],
                            "test_fraction": data["test_fraction"], "split_seed": data["split_seed"]})
    return out


# ---- disentangle stage
# (the disentangle rule needs only get_rep_store / get_rep_array and config values)


# ---- embeddings stage


def get_model_repo_id(wildcards):
    """Hugging Face id of a model (download_model only serves `source: hf` models)."""
    model = MODELS[wildcards.model]
    if not get_facts(wildcards.model).needs_weights:
        raise ConfigError(
            f"model '{wildcards.model}' has source '{model['source']}': its weights ship with its package, "
            f"there is nothing to download"
        )
    return model["id"]


def get_model_revision(wildcards):
    return MODELS[wildcards.model].get("revision", "main")


def get_extraction_mem_mb(wildcards):
    """Memory of one extraction job, as the model's encoder module sizes it."""
    return get_facts(wildcards.model).resources()["mem_mb"]


def get_extraction_runtime(wildcards):
    """Minutes asked of a cluster for one extraction job (generous: the CPU fallback is slow)."""
    return get_facts(wildcards.model).resources()["runtime"]


# ---------------------------------------------------------------- sae stage


def get_sae_params(wildcards):
    """Every sae.* setting that changes an SAE's weights, codes or metrics, for train_sae's params."""
    sae = config["sae"]
    keys = ("dim", "arch", "pre_bias", "unit_norm_decoder", "auxk", "auxk_k", "l1", "normalize_inputs",
            "lr", "batch_size", "epochs", "patience", "seed", "device")
    return {"sparsity": float(wildcards.sparsity), **{k: sae[k] for k in keys}}


# ---------------------------------------------------------------- frames stage


def get_frame_layers(wildcards):
    """Hidden states stored in a model's frame store: its analysed frame-resolution layers."""
    return sorted({l for m, l in frame_nodes() if m == wildcards.model})


def get_frames_params(wildcards=None):
    f = config["frames"]
    return {"window_seconds": f["window_seconds"], "dtype": f["dtype"], "chunk_frames": f["chunk_frames"]}


def get_frames_batch_size(wildcards):
    return config["frames"]["batch_size"] or get_extraction_batch_size(wildcards)


def get_frame_sae_params(wildcards):
    """sae.* settings of the model (as clip SAEs) plus sae.frame.* training settings, for train_frame_sae."""
    sae = config["sae"]
    keys = ("dim", "arch", "pre_bias", "unit_norm_decoder", "auxk", "auxk_k", "l1", "normalize_inputs",
            "patience", "seed", "device")
    frame = config["sae"]["frame"]
    return {"sparsity": float(wildcards.sparsity), **{k: sae[k] for k in keys},
            **{k: frame[k] for k in ("batch_size", "lr", "epochs", "max_frames", "shuffle_buffer", "pooling")}}


def get_frame_sae_mem_mb(wildcards):
    """The shuffle buffer and a chunk (float32, twice for the batch copies), plus the SAE and PyTorch."""
    width = get_facts(wildcards.model).layer_widths()
    width = width[int(wildcards.layer)] if width else 1024
    rows = config["sae"]["frame"]["shuffle_buffer"] + config["frames"]["chunk_frames"]
    return 3000 + int(2 * rows * width * 4 / 2**20)


def get_frame_rep_input(wildcards):
    """What frame_acoustics correlates: the frame store (original) or a frame SAE's test frame codes."""
    if wildcards.rep == "original":
        return f"results/frames/{wildcards.model}.zarr"
    s = wildcards.rep[len("fsae"):]
    return f"results/fsae/{wildcards.model}/layer{wildcards.layer}/sparsity{s}/frame_codes.zarr"


# ---- report stage
# What the report shows comes from audiosae.report.registry: every section (stage)
# registers its tables, figures, claims and explore pages once.

from snakemake.io import report as for_report  # Snakemake's report() flag; the bare name starts a directive here

from audiosae.report import registry as report_registry

REPORT_FLAGS = report_registry.flags(config)
REPORT_SECTIONS = {s.name: s for s in report_registry.sections(REPORT_FLAGS)}


def section_tables(section, ext):
    """results/tables/<name>.<ext> of one report section (all sections with section=None)."""
    secs = REPORT_SECTIONS.values() if section is None else [REPORT_SECTIONS[section]]
    return [f"results/tables/{t}.{ext}" for s in secs for t in s.tables]


def section_figures(section, ext):
    secs = REPORT_SECTIONS.values() if section is None else [REPORT_SECTIONS[section]]
    return [f"results/figures/{f}.{ext}" for s in secs for f in s.figure_names(REPORT_FLAGS)]


def section_captions(section=None):
    """Each section's figure captions file (sections without figures have none)."""
    secs = REPORT_SECTIONS.values() if section is None else [REPORT_SECTIONS[section]]
    return [f"results/figures/captions/{s.name}.json" for s in secs if s.figure_names(REPORT_FLAGS)]


def section_table_outputs(section):
    """A section's CSV tables, flagged for `snakemake --report` (captions in report/tables/, relative to rules/)."""
    return [
        for_report(path, caption=f"../report/tables/{Path(path).stem}.rst", category="Tables",
                   labels={"table": Path(path).stem})
        for path in section_tables(section, "csv")
    ]


def section_figure_outputs(section):
    """A section's PNG figures, flagged for `snakemake --report` (captions in report/figures/, relative to rules/)."""
    return [
        for_report(path, caption=f"../report/figures/{Path(path).stem}.rst", category="Figures",
                   subcategory=report_registry.figure_subcategory(Path(path).stem), labels={"figure": Path(path).stem})
        for path in section_figures(section, "png")
    ]


def report_pages(wildcards=None):
    """Explore pages per section title (e.g. latent atlases), linked from the report."""
    out = {}
    for s in REPORT_SECTIONS.values():
        if s.pages:
            out[s.title] = [s.pages.format(model=m, layer=l, rep=r) for m, l, r in node_reps()]
    return out


def report_page_files(wildcards=None):
    return [p for paths in report_pages().values() for p in paths]


def disentangle_importances(wildcards=None):
    """The importance matrices (.npz) written beside each disentangle JSON."""
    return [p.removesuffix(".json") + ".npz" for p in disentangle_results()]


def get_config_yaml():
    """The validated config (defaults filled in, other corpora's settings left out) as YAML, for the report."""
    import yaml

    from audiosae.config import study_config

    return yaml.safe_dump(study_config(config), sort_keys=False, default_flow_style=False)


# ---- atlas stage


def get_atlas_store(wildcards):
    """The store of an atlas's representation; a node or rep outside this study is an error naming it."""
    if (wildcards.model, int(wildcards.layer)) not in nodes():
        raise ConfigError(f"atlas for {wildcards.model} layer {wildcards.layer}: that layer is not analysed in this "
                          f"study (nodes: {', '.join(f'{m} layer {l}' for m, l in nodes())})")
    if wildcards.rep not in reps_of(wildcards.model, int(wildcards.layer)):
        raise ConfigError(f"atlas for rep {wildcards.rep!r} of {wildcards.model} layer {wildcards.layer}: no such "
                          f"representation in this study (reps: {', '.join(REPS)}); add its sparsity to "
                          f"sae.sparsities")
    return get_rep_store(wildcards)


def get_atlas_frames(wildcards):
    """A frame SAE's atlas also reads its frame store and weights (activation traces); others nothing."""
    if not wildcards.rep.startswith("fsae"):
        return []
    s = wildcards.rep[len("fsae"):]
    return [f"results/frames/{wildcards.model}.zarr",
            f"results/fsae/{wildcards.model}/layer{wildcards.layer}/sparsity{s}/sae.safetensors"]


def get_atlas_rank_array(wildcards):
    """Frame SAEs rank an atlas's clips by their highest frame activation in the crop (codes_max)."""
    if not wildcards.rep.startswith("fsae"):
        return ""
    return "codes_max" if config["sae"]["frame"]["pooling"] == "mean" else "codes"


def get_atlas_params(wildcards=None):
    """atlas.* settings that change a page or units.csv."""
    keys = ("auroc_threshold", "rho_threshold", "top_clips", "median_clips", "histogram_bins", "ridge_folds")
    return {k: config["atlas"][k] for k in keys}


# The ablation test reads the probe of the first target (the paper's technique on VocalSet) trained on the
# original layer, and decodes with each clip-level SAE of the node.
ABLATION_TARGET = TARGETS[0]


def ablation_results(wildcards=None):
    """One ablation JSON per node with clip-level SAEs (none without them)."""
    return [f"results/ablation/{m}/layer{l}.json" for m, l in nodes()] if CLIP_LEVEL else []


def get_ablation_saes(wildcards):
    """The node's clip-level SAE folders' files the ablation reads: weights and latents."""
    base = [f"results/sae/{wildcards.model}/layer{wildcards.layer}/sparsity{s}" for s in SPARSITIES]
    return {"weights": [f"{b}/sae.safetensors" for b in base], "latents": [f"{b}/latents.zarr" for b in base]}


def atlas_dirs(wildcards=None):
    """Every atlas page folder: one per (model, layer, rep)."""
    return [f"results/atlas/{m}/layer{l}/{r}" for m, l, r in node_reps()]


# ---- interop stage (rules/interop.smk, issue 20)

def external_dirs(wildcards=None):
    """results/ext/<model>/layer<L>/<name> of every sae.external entry."""
    return [f"results/ext/{e['model']}/layer{e['layer']}/{e['name']}" for e in config["sae"]["external"]]


def get_external(wildcards):
    return external_of(config, f"ext-{wildcards.name}")


def get_external_store(wildcards):
    """What the external SAE encodes: the embeddings store (clip level) or the frame store (frame level)."""
    if get_external(wildcards)["level"] == "frame":
        return f"results/frames/{wildcards.model}.zarr"
    return f"results/embeddings/{wildcards.model}.zarr"


def sae_exports(wildcards=None):
    """The export/ folder of every SAE trained in this study."""
    return [f"{d}/export" for d in sae_dirs()]


def get_export_inputs(wildcards):
    """An SAE's own files, its probes (every target) and its atlas summary: what its model card reports."""
    base = f"results/{wildcards.kind}/{wildcards.model}/layer{wildcards.layer}/sparsity{wildcards.sparsity}"
    rep = f"{wildcards.kind}{wildcards.sparsity}"
    out = {"weights": f"{base}/sae.safetensors", "config": f"{base}/config.json", "metrics": f"{base}/metrics.json",
           "probes": [f"results/probe/{t}/{wildcards.model}/layer{wildcards.layer}/{rep}.json" for t in TARGETS]}
    if "atlas" in REPORT_SECTIONS:
        out["atlas"] = f"results/atlas/{wildcards.model}/layer{wildcards.layer}/{rep}"
    return out
