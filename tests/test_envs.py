"""The conda environments pin what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import REPO


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_env_files_match_pyproject_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {_name(d): d.replace(" ", "") for d in deps}
    seen = set()
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        for req in pip:
            if req.startswith("-e"):
                continue
            name = _name(req)
            assert name in pins, f"{env.name}: {req} is not a dependency in pyproject.toml"
            assert req.replace(" ", "") == pins[name], f"{env.name}: {req} differs from pyproject's {pins[name]}"
            seen.add(name)
    assert {"torch", "torchaudio", "snakemake"} - seen == {"snakemake"}
