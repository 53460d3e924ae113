# What several stages share: the study's axes (models, layers, representations), the
# node lists, the model facts, and the report registry's outputs. An input function
# that one stage uses lives in that stage's .smk. Names of representations and
# every result path come from audiosae.layout.
# Rule files never read `config` inside a script: what changes a result reaches
# its job as a param (built here or in its stage's file) or an input file.

from pathlib import Path

from audiosae import layout
from audiosae.config import ConfigError, corpus_description, primary_target
from audiosae.encoders.base import FRAME
from audiosae.encoders.registry import model_facts, needs_depth, resolve_layers
from audiosae.controls import settings as controls_settings
from audiosae.encoders.twin import add_twins, is_twin_name, trained_name
from audiosae.interop.external import external_of, external_reps
from audiosae.layout import Rep


# The config's models, then (controls.random_twin) each one's random-weights twin <name>_random: an ordinary
# model to every rule (docs/controls.md).
CONTROLS = config["controls"]
SPLICE = config["splice"]
TWINS = CONTROLS["random_twin"]
MODELS = add_twins(config["models"], CONTROLS["twin_seed"]) if TWINS else dict(config["models"])
SPARSITIES = [layout.sparsity_str(s) for s in config["sae"]["sparsities"]]
LEVELS = config["sae"]["levels"]
CLIP_LEVEL = "clip" in LEVELS
FRAME_LEVEL = "frame" in LEVELS
CLIP_REPS = [Rep.sae(s, "clip") for s in SPARSITIES] if CLIP_LEVEL else []
# Frame SAEs at sae.frame.sparsities (a subset of sae.sparsities; all of them by default).
FRAME_SPARSITIES = [s for s in SPARSITIES if config["sae"]["frame"]["sparsities"] is None
                    or float(s) in config["sae"]["frame"]["sparsities"]]
FRAME_REPS = [Rep.sae(s, "frame") for s in FRAME_SPARSITIES] if FRAME_LEVEL else []
# SAE seeds (controls.seeds): the SAEs at controls.seed_sparsities again with each other seed, at each level.
SEEDS = controls_settings.extra_seeds(config)
SEED_SPARSITIES = [layout.sparsity_str(s) for s in controls_settings.seed_sparsities(config)] if SEEDS else []
CLIP_SEED_REPS = [Rep.sae(s, "clip", n) for s in SEED_SPARSITIES if s in SPARSITIES for n in SEEDS] if CLIP_LEVEL else []
FRAME_SEED_REPS = ([Rep.sae(s, "frame", n) for s in SEED_SPARSITIES if s in FRAME_SPARSITIES for n in SEEDS]
                   if FRAME_LEVEL else [])
# Every representation of the study; a node's own list is reps_of(model, layer).
REPS = [Rep()] + CLIP_REPS + FRAME_REPS + [Rep.parse(f"ext-{e['name']}") for e in config["sae"]["external"]]
SYNTHETIC = config["data"]["corpus"] == "synthetic"
TARGETS = [t["label"] for t in config["probe"]["targets"]]  # probe targets, in config order
PRIMARY_TARGET = primary_target(config)  # the study's main question (ablation, levels table, claim 1)


def get_corpus_root():
    """What the manifest is made from: VocalSet's or the synthetic corpus's folder (its clips, and the synthetic
    corpus's true factors), the user's table or folder tree. Rules that read clips take it as an input."""
    corpus = config["data"]["corpus"]
    if corpus in ("vocalset", "synthetic"):
        return {"vocalset": "resources/VocalSet", "synthetic": "resources/synthetic"}[corpus]
    return config["data"]["table"]["file"] if corpus == "table" else config["data"]["folders"]["root"]


# ---------------------------------------------------------------- models and layers
# The models' facts, layers and extraction settings (the embeddings and frames stages, and the node lists below).

include: "inputs/models.smk"


# ---------------------------------------------------------------- nodes and representations
# Input functions (they take `wildcards`): with `layers: all` on a Hugging Face
# model, the nodes are known only after its download (see get_layers).


def get_rep_store(wildcards):
    """The store that holds representation `rep` of (model, layer)."""
    return layout.rep_store(wildcards.model, wildcards.layer, wildcards.rep)


def get_rep_array(wildcards):
    """Name of the array inside get_rep_store's store."""
    return layout.rep_array(wildcards.layer, wildcards.rep)


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
    """Representations of one node: original, the clip SAEs, the frame SAEs where the layer has frames, and the
    SAEs imported for it (sae.external, rules/interop.smk)."""
    frame = FRAME_REPS if FRAME_LEVEL and is_frame_layer(model, layer) else []
    return [Rep()] + CLIP_REPS + frame + [Rep.parse(r) for r in external_reps(config, model, layer)]


def node_reps():
    return [(m, l, r) for m, l in nodes() for r in reps_of(m, l)]


def seed_reps_of(model, layer):
    """The extra-seed SAEs of one node (controls.seeds): trained and probed, matched against the default seed."""
    return CLIP_SEED_REPS + (FRAME_SEED_REPS if is_frame_layer(model, layer) else [])


def has_seed_group(model, layer, rep):
    """Whether `rep` is trained with other seeds too (its node's stability file then covers its level and
    sparsity): what an atlas page and a model card show when it is."""
    rep = Rep.parse(str(rep))
    return (rep.level, rep.sparsity) in {(r.level, r.sparsity) for r in seed_reps_of(model, layer)}


# ---------------------------------------------------------------- report sections
# Every section's tables, figures and captions as rule outputs (several stages' rules use them).

include: "inputs/sections.smk"
