"""A non-editable install carries the config schema: it validates a config from outside the checkout."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

CHECK = """
import sys, yaml
import audiosae, audiosae.config as c
target = sys.argv[1]
assert audiosae.__file__.startswith(target), audiosae.__file__
cfg = c.validate(yaml.safe_load(open(sys.argv[2])))
print("sae.sparsities", cfg["sae"]["sparsities"], "schema", c.SCHEMA_PATH)
try:
    bad = yaml.safe_load(open(sys.argv[2]))
    bad["sae"]["sparsitys"] = [0.9]
    c.validate(bad)
except c.ConfigError as err:
    print("refused:", err)
"""


def _bdist_wheel_offline() -> bool:
    """Whether the installed setuptools can build a wheel without fetching anything."""
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
def test_non_editable_install_validates_a_config(tmp_path):
    src = tmp_path / "checkout"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(src)]
    offline = _bdist_wheel_offline()
    if offline:
        cmd[4:4] = ["--no-build-isolation", "--no-index"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    if proc.returncode != 0 and not offline and ("No matching distribution" in proc.stderr
                                                 or "connection" in proc.stderr.lower()):
        pytest.skip("this setuptools needs the 'wheel' package to build, and pip cannot fetch it here")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "audiosae" / "schemas" / "config.schema.yaml").is_file()

    config = tmp_path / "study.yaml"
    shutil.copy(REPO / "profiles/demo/demo.yaml", config)
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, not the checkout's src/
    run = subprocess.run([sys.executable, "-c", CHECK, str(target), str(config)], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sae.sparsities [" in run.stdout and str(target) in run.stdout
    assert "refused: unknown config key 'sae.sparsitys'" in run.stdout
