"""Names and places: what a representation is called, and where every result file of the workflow lives.

One home for both, so a rule, a script, the atlas and the report agree without
each building or parsing names of its own.

Representations (the ``rep`` wildcard and the ``rep`` column of every table):

- ``original``: a layer's own (pooled) output;
- ``sae<s>``: a clip-level SAE at sparsity ``s`` as written in the config (``sae0.9``);
- ``fsae<s>``: a frame-level SAE (``fsae0.9``);
- ``sae<s>-seed<n>`` / ``fsae<s>-seed<n>``: an extra training seed ``n`` of that SAE
  (the default seed keeps the plain name);
- ``ext-<name>``: an SAE imported from another library.

A model's random-weights twin is a *model* (``<name>_random``), not a rep: it
goes through every path below as an ordinary model name.

Paths are templates with Snakemake's wildcards (``{model}``, ``{layer}``,
``{rep}``, ``{sparsity}``, ``{target}``) and functions that fill them for one
identity. Nothing reads an identity back out of a path: a job gets it as params
(or wildcards) and every result file states its own.

This module imports nothing heavy: the Snakefile reads it while building the DAG.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

RESULTS = "results"

ORIGINAL = "original"
LEVELS = ("original", "clip", "frame", "external")
"""Levels in table order: a node's original output first, then clip SAEs, frame SAEs, imported SAEs."""
KINDS = {"original": "original", "sae": "clip", "fsae": "frame", "ext": "external"}
"""Rep kind -> its level."""

SPARSITY_PATTERN = r"\d+(?:\.\d+)?"
EXT_NAME_PATTERN = r"[A-Za-z0-9_]+(?:[.][A-Za-z0-9_]+)*"
REP_PATTERN = (rf"original|f?sae{SPARSITY_PATTERN}(?:-seed\d+)?|ext-{EXT_NAME_PATTERN}")
"""Regular expression of every representation name (the ``rep`` wildcard's constraint)."""
_REP = re.compile(rf"(?:(?P<original>original)|(?P<kind>f?sae)(?P<sparsity>{SPARSITY_PATTERN})(?:-seed(?P<seed>\d+))?"
                  rf"|ext-(?P<name>{EXT_NAME_PATTERN}))")


class RepError(ValueError):
    """A representation name that is none of the forms above."""


def sparsity_str(sparsity) -> str:
    """A sparsity as it appears in names and paths: a number as Python writes a float (0.9 -> '0.9'), a string
    as given (checked)."""
    if isinstance(sparsity, str):
        if not re.fullmatch(SPARSITY_PATTERN, sparsity):
            raise RepError(f"sparsity {sparsity!r} is not a number such as 0.9")
        return sparsity
    return str(float(sparsity))


@dataclass(frozen=True)
class Rep:
    """One representation of a (model, layer) node; ``str(rep)`` is its name, `Rep.parse` reads one back."""

    kind: str = "original"
    """original | sae (clip SAE) | fsae (frame SAE) | ext (imported SAE)."""
    sparsity: str | None = None
    """SAE sparsity as written in the config (sae and fsae only)."""
    seed: int | None = None
    """An extra training seed (sae and fsae only); None: the study's default seed."""
    name: str | None = None
    """The imported SAE's name (ext only)."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RepError(f"representation kind {self.kind!r} is none of {', '.join(KINDS)}")
        sae = self.kind in ("sae", "fsae")
        if sae != (self.sparsity is not None):
            raise RepError(f"a {self.kind} representation {'needs' if sae else 'has no'} sparsity")
        if self.seed is not None and not sae:
            raise RepError(f"a {self.kind} representation has no seed")
        if (self.kind == "ext") != (self.name is not None):
            raise RepError("an ext representation needs a name; other kinds have none")
        if sae:
            object.__setattr__(self, "sparsity", sparsity_str(self.sparsity))
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))
        if self.name is not None and not re.fullmatch(EXT_NAME_PATTERN, self.name):
            raise RepError(f"imported SAE name {self.name!r}: use letters, digits, '_' and '.'")

    # ---- constructors

    @classmethod
    def parse(cls, text: str) -> "Rep":
        """The representation named `text` (see the module docstring); a clear error for anything else."""
        m = _REP.fullmatch(str(text))
        if m is None:
            raise RepError(f"representation {text!r} is none of 'original', 'sae<sparsity>', 'fsae<sparsity>' "
                           f"(optionally '-seed<n>'), 'ext-<name>'")
        if m["original"]:
            return cls()
        if m["name"]:
            return cls("ext", name=m["name"])
        return cls(m["kind"], m["sparsity"], None if m["seed"] is None else int(m["seed"]))

    @classmethod
    def sae(cls, sparsity, level: str = "clip", seed: int | None = None) -> "Rep":
        """An SAE's representation: clip level (sae<s>) or frame level (fsae<s>)."""
        kinds = {"clip": "sae", "frame": "fsae"}
        if level not in kinds:
            raise RepError(f"SAE level {level!r} is neither 'clip' nor 'frame'")
        return cls(kinds[level], sparsity, seed)

    # ---- what it is

    def __str__(self) -> str:
        if self.kind == "original":
            return ORIGINAL
        if self.kind == "ext":
            return f"ext-{self.name}"
        return f"{self.kind}{self.sparsity}" + ("" if self.seed is None else f"-seed{self.seed}")

    @property
    def level(self) -> str:
        """original | clip | frame | external."""
        return KINDS[self.kind]

    @property
    def is_original(self) -> bool:
        return self.kind == "original"

    @property
    def sparsity_value(self) -> float:
        """The sparsity as a number (NaN for original and imported SAEs)."""
        return math.nan if self.sparsity is None else float(self.sparsity)

    def label(self) -> str:
        """Short words for people (figure labels): 'original', 'SAE 0.9', 'frame SAE 0.9 (seed 2)'."""
        if self.kind == "original":
            return ORIGINAL
        if self.kind == "ext":
            return f"imported SAE {self.name}"
        words = f"{'frame ' if self.kind == 'fsae' else ''}SAE {self.sparsity_value:g}"
        return words + ("" if self.seed is None else f" (seed {self.seed})")

    def title(self) -> str:
        """Longer words (page headings): 'original layer output', 'frame-level SAE, sparsity 0.9'."""
        if self.kind == "original":
            return "original layer output"
        if self.kind == "ext":
            return f"imported SAE {self.name}"
        words = f"{'frame-level SAE' if self.kind == 'fsae' else 'SAE'}, sparsity {self.sparsity}"
        return words + ("" if self.seed is None else f", seed {self.seed}")


def rep_of(value) -> Rep:
    """`value` as a Rep (a Rep, or a name)."""
    return value if isinstance(value, Rep) else Rep.parse(value)


# ---------------------------------------------------------------- result paths (templates)
# `{rep}` is str(Rep); `{sparsity}` is sparsity_str.

MANIFEST = f"{RESULTS}/data/manifest.csv"
ATTRIBUTES = f"{RESULTS}/data/attributes.parquet"
FRAME_LLDS = f"{RESULTS}/data/frame_llds.zarr"
EMBEDDINGS = f"{RESULTS}/embeddings/{{model}}.zarr"
FRAMES = f"{RESULTS}/frames/{{model}}.zarr"
SAE_KIND_DIR = f"{RESULTS}/{{kind}}/{{model}}/layer{{layer}}/sparsity{{sparsity}}"
"""Folder of one SAE with its rep kind (``sae`` | ``fsae``) as the ``{kind}`` wildcard; SAE_DIR fills it per level."""
SAE_DIR = {KINDS[kind]: SAE_KIND_DIR.replace("{kind}", kind) for kind in ("sae", "fsae")}
"""Folder of one SAE (per level): sae.safetensors, config.json, metrics.json, latents.zarr (frame: frame_codes.zarr)."""
SEED_SAE_DIR = {level: f"{path}-seed{{seed}}" for level, path in SAE_DIR.items()}
"""Folder of the same SAE trained with an extra seed (controls.seeds): rep sae<s>-seed<n> / fsae<s>-seed<n>."""
SAE_EXPORT = f"{SAE_KIND_DIR}/export"
"""An SAE's export folder (SAELens's cfg.json and sae_weights.safetensors, model card README.md), either level."""
SEED_SAE_EXPORT = f"{SAE_KIND_DIR}-seed{{seed}}/export"
"""The export folder of an extra-seed SAE (SEED_SAE_DIR's), either level."""
EXT_DIR = f"{RESULTS}/ext/{{model}}/layer{{layer}}/{{name}}"
"""Folder of an imported SAE's codes (sae.external): latents.zarr and metrics.json (frame level: frame_codes.zarr)."""
SAE_FILES = ("sae.safetensors", "config.json", "metrics.json", "latents.zarr")
PROBE = f"{RESULTS}/probe/{{target}}/{{model}}/layer{{layer}}/{{rep}}"
"""Probe of one target on one rep; + .json (result) and .npz (weights)."""
DISENTANGLE = f"{RESULTS}/disentangle/{{model}}/layer{{layer}}/{{rep}}"
"""+ .json (scores) and .npz (importance matrices)."""
FRAME_ACOUSTICS = f"{RESULTS}/frame_acoustics/{{model}}/layer{{layer}}/{{rep}}"
"""+ .json and .npz."""
ATLAS = f"{RESULTS}/atlas/{{model}}/layer{{layer}}/{{rep}}"
"""An atlas page folder (index.html, units.csv, summary.json)."""
ATLAS_CLIPS = f"{RESULTS}/atlas/clips"
ATLAS_SITE = f"{RESULTS}/atlas_site"
ABLATION = f"{RESULTS}/ablation/{{model}}/layer{{layer}}.json"
CAUSAL = f"{RESULTS}/causal/{{model}}/layer{{layer}}.json"
"""One node's causal atlas: erasure curves of its SAEs, steering results and badges of its cards (audiosae.causal)."""
SPLICE = f"{RESULTS}/splice/{{model}}/layer{{layer}}"
"""A node's splice results: one <rep>.json per SAE put back into the network (one job writes them all)."""
STABILITY = f"{RESULTS}/controls/stability/{{model}}/layer{{layer}}.json"
"""Seed stability of one node's SAEs (every level and seed sparsity): pairs of seeds matched, each latent's recurrence."""
SPARSE_PROBE = f"{RESULTS}/controls/sparse_probe/{{model}}/layer{{layer}}.json"
"""k-sparse probes of one node's layer and clip SAEs, for every probe target."""
TABLE = f"{RESULTS}/tables/{{name}}.{{ext}}"
FIGURE = f"{RESULTS}/figures/{{name}}.{{ext}}"
CAPTIONS = f"{RESULTS}/figures/captions/{{section}}.json"
REPORT_HTML = f"{RESULTS}/report.html"
CLAIMS = f"{RESULTS}/claims.json"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks/rules"


# ---------------------------------------------------------------- result paths (one identity)


def sae_dir(model: str, layer, rep) -> str:
    """Folder of the SAE behind `rep` (sae<s> or fsae<s>, with its seed)."""
    rep = rep_of(rep)
    if rep.kind not in ("sae", "fsae"):
        raise RepError(f"representation {rep} is not a trained SAE of this workflow; it has no SAE folder")
    if rep.seed is None:
        return SAE_DIR[rep.level].format(model=model, layer=int(layer), sparsity=rep.sparsity)
    return SEED_SAE_DIR[rep.level].format(model=model, layer=int(layer), sparsity=rep.sparsity, seed=rep.seed)


def export_dir(model: str, layer, rep) -> str:
    """The export folder of the SAE behind `rep` (sae<s> or fsae<s>, with its seed)."""
    return f"{sae_dir(model, layer, rep)}/export"


def ext_dir(model: str, layer, rep) -> str:
    """Folder of the imported SAE behind `rep` (ext-<name>)."""
    rep = rep_of(rep)
    if rep.kind != "ext":
        raise RepError(f"representation {rep} is not an imported SAE; it has no results/ext folder")
    return EXT_DIR.format(model=model, layer=int(layer), name=rep.name)


def rep_store(model: str, layer, rep) -> str:
    """The store that holds `rep` of (model, layer): the embeddings store (original) or the SAE's latents."""
    rep = rep_of(rep)
    if rep.is_original:
        return EMBEDDINGS.format(model=model)
    if rep.kind == "ext":
        return f"{ext_dir(model, layer, rep)}/latents.zarr"
    return f"{sae_dir(model, layer, rep)}/latents.zarr"


def rep_array(layer, rep) -> str:
    """Name of `rep`'s array inside rep_store's store."""
    return f"layer{int(layer)}" if rep_of(rep).is_original else "codes"


def frame_rep_store(model: str, layer, rep, ext_level: str | None = None) -> str:
    """Frame-level vectors of `rep`: the frame store (original), a frame SAE's test frame codes, or those of an
    imported frame-level SAE (`ext_level`: the ``level`` of its sae.external entry, which only the config knows)."""
    rep = rep_of(rep)
    if rep.is_original:
        return FRAMES.format(model=model)
    if rep.kind == "ext":
        if ext_level != "frame":
            raise RepError(f"representation {rep} is an imported SAE of level {ext_level!r}; only a frame-level one "
                           f"(sae.external level: frame) has frame-level vectors")
        return f"{ext_dir(model, layer, rep)}/frame_codes.zarr"
    if rep.kind != "fsae":
        raise RepError(f"representation {rep} has no frame-level vectors (only original, fsae<s> and frame-level "
                       f"ext-<name> have)")
    return f"{sae_dir(model, layer, rep)}/frame_codes.zarr"


def probe_path(target: str, model: str, layer, rep, ext: str = "json") -> str:
    return f"{PROBE.format(target=target, model=model, layer=int(layer), rep=rep_of(rep))}.{ext}"


def disentangle_path(model: str, layer, rep, ext: str = "json") -> str:
    return f"{DISENTANGLE.format(model=model, layer=int(layer), rep=rep_of(rep))}.{ext}"


def frame_acoustics_path(model: str, layer, rep, ext: str = "json") -> str:
    return f"{FRAME_ACOUSTICS.format(model=model, layer=int(layer), rep=rep_of(rep))}.{ext}"


def atlas_dir(model: str, layer, rep) -> str:
    return ATLAS.format(model=model, layer=int(layer), rep=rep_of(rep))


def ablation_path(model: str, layer) -> str:
    return ABLATION.format(model=model, layer=int(layer))


def causal_path(model: str, layer) -> str:
    return CAUSAL.format(model=model, layer=int(layer))


def splice_dir(model: str, layer) -> str:
    return SPLICE.format(model=model, layer=int(layer))


def splice_path(model: str, layer, rep) -> str:
    """results/splice/<model>/layer<L>/<rep>.json: `rep` spliced into (model, layer)."""
    return f"{splice_dir(model, layer)}/{rep_of(rep)}.json"


def stability_path(model: str, layer) -> str:
    return STABILITY.format(model=model, layer=int(layer))


def sparse_probe_path(model: str, layer) -> str:
    return SPARSE_PROBE.format(model=model, layer=int(layer))


def table_path(name: str, ext: str = "csv") -> str:
    return TABLE.format(name=name, ext=ext)


def figure_path(name: str, ext: str = "png") -> str:
    return FIGURE.format(name=name, ext=ext)


def captions_path(section: str) -> str:
    return CAPTIONS.format(section=section)
