"""Load and check a study's configuration before any job runs.

The JSON schema (``audiosae/schemas/config.schema.yaml``, package data) says what each key is; each
encoder module adds the model keys of its own source (``Facts.options``, see
audiosae.encoders.registry). This module fills in the defaults, turns the first
violation into one sentence that names the key, and adds the checks a schema
cannot express (a k of zero, a remote-code model without a pinned revision, an
out-of-range layer), asking the encoder registry for every fact about a model.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from audiosae.errors import ConfigError

SCHEMA_PATH = resources.files("audiosae") / "schemas" / "config.schema.yaml"
"""The schema, shipped inside the package (found the same way from a checkout and from an install)."""
__all__ = ["ConfigError", "SCHEMA_PATH", "load_schema", "validate"]


def _with_defaults(validator_class):
    """A validator class that writes each property's `default` into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts: list[str] = []
    for p in error.absolute_path:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "<top level>"


# Keys that moved: the old name gets a pointer to the new one instead of a bare "unknown key".
MOVED = {
    "data.techniques": "has moved to data.vocalset.techniques (or data.synthetic.techniques)",
    "data.test_singers": "has moved to data.vocalset.test_singers (or data.synthetic.test_singers)",
    "probe.device": "is gone: probes train on the CPU, in numpy (a GPU does not speed up one small matrix); "
                    "remove it",
}


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        key = _key_path(error)
        for e in extra:
            full = (key + "." if key != "<top level>" else "") + e
            if full in MOVED:
                return f"config key '{full}' {MOVED[full]}"
        names = ", ".join(f"'{(key + '.' if key != '<top level>' else '') + e}'" for e in extra)
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown config key {names} (allowed here: {allowed})"
    if error.validator == "oneOf":
        return f"config key '{_key_path(error)}': {error.instance!r} is not valid ({error.schema.get('description', 'see schema')})"
    return f"config key '{_key_path(error)}': {error.message}"


def load_schema(path: Path | str | None = None) -> dict:
    """The config schema (the packaged one unless `path` names another), with every encoder source's own model
    keys merged in."""
    from audiosae.encoders.registry import SOURCES, source_options

    text = (SCHEMA_PATH if path is None else Path(path)).read_text(encoding="utf-8")
    # libyaml's loader where PyYAML has it: every Snakemake start reads the schema (75 ms with the pure-Python
    # loader on the 2-core machine, 10 ms with libyaml); the same data either way
    schema = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    model = schema["properties"]["models"]["additionalProperties"]
    model["properties"]["source"]["enum"] = list(SOURCES)
    for source, options in source_options().items():
        for key, spec in options.items():
            if key in model["properties"] and model["properties"][key] != spec:
                raise RuntimeError(f"encoder source {source!r} declares model key {key!r} differently from "
                                   f"another source or the schema; give it another name")
            model["properties"][key] = spec
    return schema


def validate(config: dict, schema: dict | None = None) -> dict:
    """Fill in defaults in place and raise ConfigError on the first problem.

    Returns the same dict for convenience.
    """
    schema = schema or load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError(_describe(errors[0]))
    _check_semantics(config)
    return config


def _check_semantics(config: dict) -> None:
    from audiosae.encoders.registry import COMMON_KEYS, model_facts, resolve_layers, source_options
    from audiosae.sae.sizes import k_for, latent_count  # light module, no torch

    owners = source_options()
    for name, model in config["models"].items():
        source = model["source"]
        for key in model:
            if key not in COMMON_KEYS and key not in owners[source]:
                only = [s for s, opts in owners.items() if key in opts]
                raise ConfigError(f"config key 'models.{name}.{key}' applies to source '{only[0]}' only, "
                                  f"not '{source}'")
        facts = model_facts(name, model)
        facts.check()
        widths = facts.layer_widths()
        if widths is None:
            continue  # a Hugging Face model before its download: the rules check its layers once it is there
        frame = config["sae"]["frame"]
        frame_sparsities = frame["sparsities"] if frame["sparsities"] is not None else config["sae"]["sparsities"]
        for layer in resolve_layers(name, model["layers"], len(widths)):
            n_clip = latent_count(config["sae"]["dim"], widths[layer])
            m = config["atlas"]["ablation_m"]
            if "clip" in config["sae"]["levels"] and m > n_clip:
                raise ConfigError(
                    f"config key 'atlas.ablation_m': the ablation zeroes {m} latents per class, but model '{name}' "
                    f"layer {layer}'s clip SAEs have {n_clip} (sae.dim {config['sae']['dim']} of width "
                    f"{widths[layer]}); lower atlas.ablation_m to at most {max(n_clip // 2, 1)}"
                )
            for s in config["sae"]["sparsities"]:
                n = latent_count(config["sae"]["dim"], widths[layer], config["sae"]["min_dim"])
                if k_for(s, n) == 0:
                    raise ConfigError(
                        f"config key 'sae.sparsities': model '{name}', layer {layer}, sparsity {s} gives "
                        f"k = int((1 - {s}) * {n}) = 0 active codes; lower the sparsity or raise sae.dim"
                    )
            if "frame" not in config["sae"]["levels"]:
                continue
            for s in frame_sparsities:
                n = latent_count(frame["dim"], widths[layer], frame["min_dim"])
                if k_for(s, n) == 0:
                    raise ConfigError(
                        f"config key 'sae.frame.dim': model '{name}', layer {layer}, frame sparsity {s} gives "
                        f"k = int((1 - {s}) * {n}) = 0 active codes; raise sae.frame.dim or lower the sparsity"
                    )
    frame_sparsities = config["sae"]["frame"]["sparsities"]
    if frame_sparsities is not None:
        other = [s for s in frame_sparsities if s not in config["sae"]["sparsities"]]
        if other:
            raise ConfigError(f"config key 'sae.frame.sparsities': {other[0]} is not one of sae.sparsities "
                              f"{config['sae']['sparsities']}; frame SAEs are compared with clip SAEs at equal sparsity")
    for kind in ("vocalset", "synthetic"):
        techniques = config["data"][kind]["techniques"]
        if len(set(techniques)) != len(techniques):
            raise ConfigError(f"config key 'data.{kind}.techniques': a technique is listed twice")
    _check_corpus(config["data"])
    _resolve_targets(config)
    _check_synthetic_limits(config)
    from audiosae.interop.external import check_external  # issue 20: sae.external, its files read now

    check_external(config)
    from audiosae.controls.settings import check as check_controls  # issue 19: twins, seeds

    check_controls(config)


def _check_corpus(data: dict) -> None:
    kind = data["corpus"]
    if kind == "table":
        for key in ("file", "labels"):
            if key not in data["table"]:
                raise ConfigError(f"config key 'data.table.{key}' is required with corpus: table")
    if kind == "folders" and "root" not in data["folders"]:
        raise ConfigError("config key 'data.folders.root' is required with corpus: folders")
    if kind == "synthetic":
        syn = data["synthetic"]
        missing = [s for s in syn["test_singers"] if s not in syn["singers"]]
        if missing:
            raise ConfigError(f"config key 'data.synthetic.test_singers': {missing} are not among "
                              f"data.synthetic.singers {syn['singers']}")
        if not set(syn["singers"]) - set(syn["test_singers"]):
            raise ConfigError("config key 'data.synthetic.test_singers': every singer is a test singer; leave "
                              "some for train and valid")


def _check_synthetic_limits(config: dict) -> None:
    """The limits of audiosae.limits that the synthetic corpus's settings fix: its test split is the test singers'
    clips (a table or folder corpus is checked in the Snakefile, where its table is read)."""
    if config["data"]["corpus"] != "synthetic":
        return
    from audiosae.limits import LimitError, check_bootstrap, check_disentangle

    syn = config["data"]["synthetic"]
    n_test = len(syn["test_singers"]) * len(syn["techniques"]) * int(syn["clips_per_technique"])
    try:
        check_disentangle(n_test, int(config["disentangle"]["cv_folds"]), "the synthetic corpus")
        for t in config["probe"]["targets"]:
            if t["split"] == "corpus":
                check_bootstrap(t["label"], n_test, int(config["probe"]["bootstrap"]))
    except LimitError as err:
        raise ConfigError(str(err)) from None


def _resolve_targets(config: dict) -> None:
    """Fill in probe.targets (when null) and check each names a label of the corpus once."""
    from audiosae.data.corpus import corpus_group_label, corpus_labels, default_targets

    data = config["data"]
    if config["probe"].get("targets") is None:
        config["probe"]["targets"] = default_targets(data)
    labels = corpus_labels(data)
    group = corpus_group_label(data)
    seen = set()
    for i, t in enumerate(config["probe"]["targets"]):
        t.setdefault("split", "corpus")
        key = f"config key 'probe.targets[{i}]"
        if t["label"] not in labels:
            raise ConfigError(f"{key}.label': '{t['label']}' is not a label of the {data['corpus']} corpus "
                              f"(labels: {', '.join(labels)})")
        if t["label"] in seen:
            raise ConfigError(f"{key}.label': '{t['label']}' is listed twice; a label may be probed once")
        seen.add(t["label"])
        if t["label"] == group and t["split"] == "corpus":
            raise ConfigError(f"{key}.split': '{t['label']}' is the corpus's group, so no test {t['label']} is "
                              f"ever in train under the corpus split; use split: random")


CORPUS_SECTIONS = ("vocalset", "synthetic", "table", "folders")


def study_config(config: dict) -> dict:
    """A copy of a validated config without the settings of the corpora it does not use (what the report shows)."""
    out = copy.deepcopy(config)
    for kind in CORPUS_SECTIONS:
        if kind != out["data"]["corpus"]:
            out["data"].pop(kind, None)
    return out



def corpus_description(data: dict) -> str:
    """The corpus in a few words that name its source (a model card's corpus row): the table's file, the folder
    tree's root, the synthetic corpus's seed, VocalSet's archive."""
    kind = data["corpus"]
    settings = data.get(kind) or {}
    if kind == "table":
        return f"table {settings.get('file', '?')} (labels: {', '.join(settings.get('labels', []))})"
    if kind == "folders":
        return f"folder tree {settings.get('root', '?')} (label: {settings.get('label', 'label')})"
    if kind == "synthetic":
        return f"synthetic (VocalSet-shaped, seed {settings.get('seed', '?')})"
    if kind == "vocalset":
        return f"vocalset ({settings.get('url', 'VocalSet')})"
    return kind


def primary_target(config: dict) -> str:
    """The study's primary probe target: the first of ``probe.targets`` (the paper's question, singing technique,
    on VocalSet). The ablation test, the levels table and claim 1 ask it; every table keeps all targets."""
    targets = config["probe"]["targets"]
    if not targets:
        raise ConfigError("config key 'probe.targets': no probe target; list at least one label")
    return targets[0]["label"]
