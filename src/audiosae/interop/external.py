"""``sae.external``: SAEs trained elsewhere, each a representation ``ext-<name>`` of one node.

:func:`check_external` runs with the config check (before any job): names,
models, layers and levels are checked against the study, and every SAE's files
are read by its format's reader with the node's width where the width is known
without a download (packaged models; a Hugging Face model's width is checked by
the job that encodes with the SAE, which then stops with the same one-line error).
"""

from __future__ import annotations

from audiosae.errors import ConfigError


def ext_rep(name: str) -> str:
    return f"ext-{name}"


def external_entries(config: dict) -> list[dict]:
    return list(config.get("sae", {}).get("external") or [])


def node_width(config: dict, model: str, layer: int) -> int | None:
    """Width of hidden state `layer` of config model `model`, when known without downloading anything."""
    from audiosae.encoders.registry import model_facts

    widths = model_facts(model, config["models"][model]).layer_widths()
    if widths is None or not 0 <= layer < len(widths):
        return None
    return int(widths[layer])


def check_external(config: dict) -> None:
    """Raise ConfigError (one line, naming the key or the file) for the first bad `sae.external` entry."""
    if not external_entries(config):
        return  # nothing to read: the readers (and torch) stay unimported while the Snakefile builds the DAG
    from audiosae.encoders.base import FRAME
    from audiosae.encoders.registry import model_facts, needs_depth, resolve_layers
    from audiosae.interop.readers import InteropError, read_external

    seen = set()
    for i, ext in enumerate(external_entries(config)):
        key = f"config key 'sae.external[{i}]"
        name, model, layer = ext["name"], ext["model"], int(ext["layer"])
        if name in seen:
            raise ConfigError(f"{key}.name': {name!r} is used twice; each external SAE needs its own name")
        seen.add(name)
        if model not in config["models"]:
            raise ConfigError(f"{key}.model': {model!r} is not a model of this study (models: "
                              f"{', '.join(config['models'])})")
        spec = config["models"][model]["layers"]
        facts = model_facts(model, config["models"][model])
        depth = facts.depth()
        if depth is not None:
            layers = resolve_layers(model, spec, depth)
        elif not needs_depth(spec):
            layers = sorted(set(spec))
        else:
            layers = None  # `layers: all` of a model not yet downloaded: the rules check it
        if layers is not None and layer not in layers:
            raise ConfigError(f"{key}.layer': layer {layer} of {model!r} is not analysed in this study "
                              f"(models.{model}.layers gives {layers})")
        if ext["level"] == "frame":
            if "frame" not in config["sae"]["levels"]:
                raise ConfigError(f"{key}.level': frame-level external SAEs read the frame store, which is made "
                                  f"only with sae.levels containing frame")
            resolution = facts.layer_resolution()
            if resolution is not None and resolution[layer] != FRAME:
                raise ConfigError(f"{key}.level': layer {layer} of {model!r} has one vector per clip, not per frame")
        try:
            read_external(ext["format"], ext["path"], node_width(config, model, layer))
        except InteropError as err:
            raise ConfigError(f"{key}' ({name}): {err}") from None


def external_of(config: dict, rep: str) -> dict:
    """The sae.external entry of representation `rep` (ext-<name>)."""
    for ext in external_entries(config):
        if ext_rep(ext["name"]) == rep:
            return ext
    raise ConfigError(f"representation {rep!r}: no sae.external entry named {rep[len('ext-'):]!r}")


def external_reps(config: dict, model: str, layer: int, level: str | None = None) -> list[str]:
    """The ext-<name> representations of one node, in config order (only those of `level` when given)."""
    return [ext_rep(e["name"]) for e in external_entries(config) if e["model"] == model
            and int(e["layer"]) == int(layer) and (level is None or e.get("level", "clip") == level)]
