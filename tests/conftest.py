"""Shared fixtures: running the workflow on small configs in temporary folders."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TINY_CONFIG = REPO / "tests" / "tiny.yaml"


def on_ci() -> bool:
    """True where the environment variable CI is `true` (GitHub Actions, GitLab CI and most others set it)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def missing_prerequisite(reason: str) -> None:
    """A test cannot run because something outside the repository is missing (a browser, a cluster, ../shared).

    Locally the test skips with `reason`; under CI=true, where root, apt-get and
    ../shared are all there, a missing piece is a failure that names it.
    """
    if on_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def import_or_missing(module: str, reason: str = ""):
    """`pytest.importorskip`, except that under CI=true a missing module fails the test (see missing_prerequisite)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing_prerequisite(f"cannot import {module!r} ({err})" + (f": {reason}" if reason else ""))


def pytest_configure(config):
    """Print every skip's reason in the summary (`-rs`): a local skip must say what was missing."""
    chars = config.option.reportchars or ""
    if "s" not in chars and "a" not in chars and "A" not in chars and "N" not in chars:
        config.option.reportchars = chars + "s"


# Session studies that tests of several modules read: every user of one runs on one worker, so it runs once.
SHARED_STUDIES = ("demo_run", "crepe_run")
# Seconds each long xdist group took in `make test` on the 2-core machine (its study and its tests; 2026-12-06):
# the order groups are handed out in, longest first. Groups not named here are shorter and keep their order.
GROUP_SECONDS = {"demo_run": 355, "crepe_run": 285, "test_slurm": 210, "test_frames_workflow": 150,
                 "test_controls_workflow": 150, "test_second_corpus": 95, "test_user_corpus": 70,
                 "test_workflow": 75, "test_benchmarks": 60, "test_embeddings_workflow": 50, "test_report_html": 35,
                 "test_figures_hold_data": 35}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the mark into the test's id
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), keep each module on one worker (its
    module-scoped study runs once) and every user of a session study (`SHARED_STUDIES`: the tiny study `demo_run`,
    the CREPE study `crepe_run`) on one worker (it runs once, not once per worker)."""
    groups = {}
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((study for study in SHARED_STUDIES if study in names), item.module.__name__)
        item.add_marker(pytest.mark.xdist_group(group))
        groups[item.nodeid] = group
    # Longest groups first (`make test` passes --no-loadscope-reorder, so xdist hands groups out in this order): a
    # long study that starts last leaves the other worker idle at the end.
    items.sort(key=lambda item: -GROUP_SECONDS.get(groups[item.nodeid], 0))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Refuse a run whose xdist groups were silently dropped: with `--dist loadgroup`, xdist writes each test's group
    into its id ('...@group'); pytest 9.2 ignores that write (pytest-xdist#1386), and then every worker runs every
    module-scoped study again (the suite took 26 min instead of ~15)."""
    config = session.config
    if not getattr(config.option, "loadgroup", False) or not hasattr(config, "workerinput"):
        return
    lost = [item.nodeid for item in session.items if "@" not in item.nodeid.rsplit("]", 1)[-1]]
    if lost:
        raise pytest.UsageError(f"--dist loadgroup but {len(lost)} tests have no group in their id (first: {lost[0]}); "
                                f"pytest {pytest.__version__} with this pytest-xdist does not group tests: install "
                                f"the test extra's pytest (pip install -e '.[test]')")


def tiny_config(**overrides) -> dict:
    """The tests' tiny study (tests/tiny.yaml), with top-level sections updated from `overrides`."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section] = {**cfg[section], **values}
        else:
            cfg[section] = copy.deepcopy(values)
    return cfg


def demo_config(**overrides) -> dict:
    """The session's study (`demo_run`): the tiny study with the splice and causal stages on."""
    cfg = tiny_config(**overrides)
    for stage in ("splice", "causal"):
        cfg[stage] = {**cfg.get(stage, {}), "enabled": True, **overrides.get(stage, {})}
    return cfg


def write_config(workdir: Path, cfg: dict) -> Path:
    path = Path(workdir) / "study.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True,
                  cores: int = 2, env: dict | None = None, timeout: float = 1200,
                  snakefile: Path | None = None) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `workdir` (results land there, not in the repo)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = write_config(workdir, config if config is not None else tiny_config())
    cmd = [SNAKEMAKE, "-s", str(snakefile or REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(cfg_path),
           "--resources", "gpu=1", "--cores", str(cores), *args]
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}): {' '.join(cmd)}\n"
                             f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def crepe_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    """CREPE layer 4 at the clip and the frame level, a second seed, SAEs imported in every foreign layout and the
    splice stage (tests/test_interop_workflow.py's study, read by tests/test_splice_workflow.py too); returns its
    working directory (read-only for tests) and the imported SAEs' config entries."""
    import test_interop_workflow as interop

    root = tmp_path_factory.mktemp("crepe_run")
    externals = interop.write_externals(root / "ext")
    externals.append({**externals[-1], "name": "frame_sp", "level": "frame"})  # the sparsify SAE on every frame
    workdir = root / "run"
    run_snakemake(workdir, config=interop.study(root, externals))
    return workdir, externals


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny torch steps on shared cores: a second intra-op thread only adds contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A complete run of the tiny study; returns its working directory (read-only for tests)."""
    workdir = tmp_path_factory.mktemp("demo_run")
    run_snakemake(workdir, config=demo_config())
    return workdir
