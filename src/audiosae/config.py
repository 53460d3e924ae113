"""Load and check a study's configuration before any job runs.

The JSON schema (``schemas/config.schema.yaml``) says what each key is; this
module fills in its defaults, turns the first violation into one sentence that
names the key, and adds the checks a schema cannot express (a k of zero, a
remote-code model without a pinned revision, an out-of-range layer).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration key is missing, misspelt, of the wrong type or out of range."""


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


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        key = _key_path(error)
        names = ", ".join(f"'{(key + '.' if key != '<top level>' else '') + e}'" for e in extra)
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown config key {names} (allowed here: {allowed})"
    if error.validator == "oneOf":
        return f"config key '{_key_path(error)}': {error.instance!r} is not valid ({error.schema.get('description', 'see schema')})"
    return f"config key '{_key_path(error)}': {error.message}"


def load_schema(path: Path | str = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


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


_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _check_semantics(config: dict) -> None:
    from audiosae.sae.sizes import latent_count, k_for  # light module, no torch

    for name, model in config["models"].items():
        source = model["source"]
        if source == "hf" and "id" not in model:
            raise ConfigError(f"config key 'models.{name}.id': a Hugging Face model needs its id")
        if model.get("trust_remote_code") and not _HEX40.match(model.get("revision", "")):
            raise ConfigError(
                f"config key 'models.{name}.revision': trust_remote_code runs the repository's own code, "
                f"so pin it to a 40-hex commit hash (got {model.get('revision')!r})"
            )
        for key, only in (("capacity", "crepe"), ("hop_ms", "crepe"), ("id", "hf"), ("trust_remote_code", "hf")):
            if key in model and source != only:
                raise ConfigError(f"config key 'models.{name}.{key}' applies to source '{only}' only, not '{source}'")
        widths = static_layer_widths(model)
        if widths is not None:
            resolve_layers(name, model["layers"], len(widths))
            for layer in resolve_layers(name, model["layers"], len(widths)):
                for s in config["sae"]["sparsities"]:
                    n = latent_count(config["sae"]["dim"], widths[layer])
                    if k_for(s, n) == 0:
                        raise ConfigError(
                            f"config key 'sae.sparsities': model '{name}', layer {layer}, sparsity {s} gives "
                            f"k = int((1 - {s}) * {n}) = 0 active codes; lower the sparsity or raise sae.dim"
                        )
    techniques = config["data"]["techniques"]
    if len(set(techniques)) != len(techniques):
        raise ConfigError("config key 'data.techniques': a technique is listed twice")


def static_layer_widths(model: dict) -> list[int] | None:
    """Widths of every hidden state of a model known without loading it, or None."""
    source = model["source"]
    if source == "crepe":
        from audiosae.encoders.crepe import layer_widths

        return layer_widths(model.get("capacity", "tiny"))
    if source == "resemblyzer":
        from audiosae.encoders.resemblyzer import layer_widths

        return layer_widths()
    return None


def resolve_layers(name: str, layers: Any, depth: int) -> list[int]:
    """Hidden-state indices (negatives counted from the end, 'all') as sorted non-negative ints.

    `depth` is the number of hidden states (embedding output included).
    """
    if layers == "all":
        return list(range(depth))
    out = []
    for layer in layers:
        if not -depth <= layer < depth:
            raise ConfigError(
                f"config key 'models.{name}.layers': layer {layer} is out of range for model '{name}', "
                f"which has hidden states 0..{depth - 1} (or -{depth}..-1)"
            )
        out.append(layer % depth)
    return sorted(set(out))
