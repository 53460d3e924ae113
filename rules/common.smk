# Target lists, input functions and wildcard constraints shared by every stage.
# Rule files never read `config` inside a script: what changes a result reaches
# its job as a param (built here) or an input file.

import json
from pathlib import Path

from audiosae.config import ConfigError, resolve_layers, static_layer_widths


MODELS = config["models"]
SPARSITIES = [str(s) for s in config["sae"]["sparsities"]]
REPS = ["original"] + [f"sae{s}" for s in SPARSITIES]
SYNTHETIC = config["data"]["corpus"] == "synthetic"


# ---------------------------------------------------------------- data


def get_corpus_root():
    """Folder holding the corpus's WAVs in VocalSet's layout."""
    return "resources/synthetic" if SYNTHETIC else "resources/VocalSet"


# ---------------------------------------------------------------- models and layers


def hf_depth(model):
    """Hidden states of a downloaded Hugging Face model (its config.json), or None."""
    cfg = Path("resources/models") / model / "config.json"
    if not cfg.exists():
        return None
    data = json.loads(cfg.read_text())
    n = data.get("num_hidden_layers")
    return None if n is None else n + 1


def get_layers(model):
    """Hidden-state indices analysed for `model`, as non-negative ints."""
    spec = MODELS[model]["layers"]
    widths = static_layer_widths(MODELS[model])
    if widths is not None:
        return resolve_layers(model, spec, len(widths))
    depth = hf_depth(model)
    if depth is not None:
        return resolve_layers(model, spec, depth)
    if spec == "all" or any(l < 0 for l in spec):
        raise ConfigError(
            f"config key 'models.{model}.layers': 'all' and negative layers need the model's depth; "
            f"run `snakemake download_model_{model}` first (or list non-negative layers)"
        )
    return sorted(set(spec))


def get_model_params(wildcards):
    """Everything about a model that changes its embeddings (layers excluded: all are stored)."""
    cfg = {k: v for k, v in MODELS[wildcards.model].items() if k not in ("layers", "batch_size")}
    return cfg


def get_model_weights(wildcards):
    """Downloaded weights folder for Hugging Face models; packaged models need none."""
    if MODELS[wildcards.model]["source"] == "hf":
        return f"resources/models/{wildcards.model}"
    return []


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
    """The store that holds representation `rep` of (model, layer)."""
    if wildcards.rep == "original":
        return f"results/embeddings/{wildcards.model}.zarr"
    s = wildcards.rep[len("sae"):]
    return f"results/sae/{wildcards.model}/layer{wildcards.layer}/sparsity{s}/latents.zarr"


def get_rep_array(wildcards):
    """Name of the array inside get_rep_store's store."""
    return f"layer{wildcards.layer}" if wildcards.rep == "original" else "codes"


# ---------------------------------------------------------------- target lists


def nodes():
    """Every analysed (model, layer) pair."""
    return [(m, l) for m in MODELS for l in get_layers(m)]


def sae_dirs():
    return [f"results/sae/{m}/layer{l}/sparsity{s}" for m, l in nodes() for s in SPARSITIES]


def sae_metrics():
    return [f"{d}/metrics.json" for d in sae_dirs()]


def probe_results():
    return [f"results/probe/{m}/layer{l}/{r}.json" for m, l in nodes() for r in REPS]


def disentangle_results():
    return [f"results/disentangle/{m}/layer{l}/{r}.json" for m, l in nodes() for r in REPS]


def embedding_stores():
    return [f"results/embeddings/{m}.zarr" for m in MODELS]


# ---- probe stage


def get_probe_gpu(wildcards):
    """GPUs a probe asks for: one only when the config puts probes on CUDA."""
    return 1 if config["probe"]["device"] == "cuda" else 0


# ---- disentangle stage
# (the disentangle rule needs only get_rep_store / get_rep_array and config values)


# ---- embeddings stage


def get_model_repo_id(wildcards):
    """Hugging Face id of a model (download_model only serves `source: hf` models)."""
    model = MODELS[wildcards.model]
    if model["source"] != "hf":
        raise ConfigError(
            f"model '{wildcards.model}' has source '{model['source']}': its weights ship with its package, "
            f"there is nothing to download"
        )
    return model["id"]


def get_model_revision(wildcards):
    return MODELS[wildcards.model].get("revision", "main")


def get_extraction_mem_mb(wildcards):
    """Memory of one extraction job: a base-size transformer, CREPE full's wide first block, or small."""
    model = MODELS[wildcards.model]
    if model["source"] == "hf":
        return 8000
    if model["source"] == "crepe" and model.get("capacity", "tiny") == "full":
        return 6000
    return 2000


def get_extraction_runtime(wildcards):
    """Minutes asked of a cluster for one extraction job (generous: the CPU fallback is slow)."""
    model = MODELS[wildcards.model]
    if model["source"] == "hf" or model.get("capacity") == "full":
        return 720
    return 120


# ---------------------------------------------------------------- sae stage


def get_sae_params(wildcards):
    """Every sae.* setting that changes an SAE's weights, codes or metrics, for train_sae's params."""
    sae = config["sae"]
    keys = ("dim", "arch", "pre_bias", "unit_norm_decoder", "auxk", "auxk_k", "l1", "normalize_inputs",
            "lr", "batch_size", "epochs", "patience", "seed", "device")
    return {"sparsity": float(wildcards.sparsity), **{k: sae[k] for k in keys}}


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


def report_pages():
    """Explore pages per section title (e.g. latent atlases), linked from the report."""
    out = {}
    for s in REPORT_SECTIONS.values():
        if s.pages:
            out[s.title] = [s.pages.format(model=m, layer=l, rep=r) for m, l in nodes() for r in REPS]
    return out


def report_page_files():
    return [p for paths in report_pages().values() for p in paths]


def disentangle_importances():
    """The importance matrices (.npz) written beside each disentangle JSON."""
    return [p.removesuffix(".json") + ".npz" for p in disentangle_results()]


def get_config_yaml():
    """The validated config (defaults filled in) as YAML, for the report's 'what was run'."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
