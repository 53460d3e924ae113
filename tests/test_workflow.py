"""Workflow behaviour on the tiny study: reruns, the output cache, profiles, kills, bad audio.

Every test here reads what Snakemake plans from a dry run of a changed config
against one complete run (the session's `demo_run`), so each asserts exactly
which jobs a change re-plans.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE, demo_config, import_or_missing, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

DOWNSTREAM = {"aggregate": 1, "figures": 1, "report": 1, "all": 1}
# A new probe of the original layer reruns the node's ablation test (it reads that probe) and the atlas tables.
ABLATION = {"ablation": 3, "atlas_report": 1}
ATLAS = {"atlas_report": 1, "atlas_site": 1}  # the atlas stage's tables, figures and report folder
# Each SAE's export/ model card reports its probes and atlas share: new probes re-plan every export (6 SAEs).
EXPORTS = {"export_sae": 6}
# Each node's splice job reads its SAEs and, through its output-level probes, the probe targets, their splits and the
# bootstrap settings; the causal job reads the targets (its output probes) and the atlas pages read its results.
SPLICE = {"splice": 3, "splice_report": 1}
CAUSAL = {"causal": 3, "causal_report": 1}


def planned(workdir: Path, config: dict, *args: str, snakefile: Path | None = None) -> Counter:
    """Jobs a dry run would execute, counted per rule (empty when nothing is to be done)."""
    proc = run_snakemake(workdir, "-n", *args, config=config, snakefile=snakefile)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return Counter()
    table = out.split("Job stats:", 1)[1].splitlines()
    counts = Counter()
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


# ---------------------------------------------------------------- rerun only what changed


def test_complete_run_plans_nothing(demo_run):
    assert planned(demo_run, demo_config()) == Counter()


def test_new_sparsity_plans_only_its_saes_probes_and_disentangling(demo_run):
    cfg = demo_config(sae={"sparsities": [0.5, 0.75, 0.9]})
    nodes = 3  # crepe layers 4 and 6, resemblyzer layer 2
    assert planned(demo_run, cfg) == Counter({"train_sae": nodes, "probe": nodes, "disentangle": nodes,
                                              "atlas": nodes, "ablation": nodes, "export_sae": nodes, **ATLAS,
                                              **SPLICE, **DOWNSTREAM})


def test_probe_hyperparameter_plans_only_probes_and_what_follows(demo_run):
    cfg = demo_config(probe={"lr": 0.002})
    assert planned(demo_run, cfg) == Counter({"probe": 3 * 3, **ABLATION, **EXPORTS, **DOWNSTREAM})


def test_a_new_probe_target_plans_the_probes_and_what_follows(demo_run):
    """One probe job per (model, layer, rep) probes every target, so a new target re-plans those jobs only."""
    cfg = demo_config()
    cfg["probe"]["targets"] = [*cfg["probe"]["targets"], {"label": "vowel", "split": "corpus"}]
    assert planned(demo_run, cfg) == Counter({"probe": 3 * 3, **ABLATION, **EXPORTS, **SPLICE, **CAUSAL,
                                              "atlas": 6, **ATLAS, **DOWNSTREAM})


def test_the_bootstrap_seed_plans_probes_and_tables_but_no_training_upstream(demo_run):
    cfg = demo_config()
    cfg["probe"]["bootstrap_seed"] = 7
    assert planned(demo_run, cfg) == Counter({"probe": 3 * 3, **ABLATION, **EXPORTS, **SPLICE, **DOWNSTREAM})


def test_crop_length_plans_attributes_extraction_and_everything_after(demo_run):
    cfg = demo_config(audio={"crop_seconds": 1.25})
    assert planned(demo_run, cfg) == Counter(
        {"attributes": 1, "extract_embeddings": 2, "train_sae": 6, "probe": 9, "disentangle": 9,
         "atlas_clips": 1, "atlas": 9, "ablation": 3, **EXPORTS, **ATLAS, **SPLICE, **CAUSAL, **DOWNSTREAM}
    )


def test_one_models_layers_replan_its_downstream_but_not_its_extraction(demo_run):
    cfg = demo_config()
    cfg["models"]["crepe"]["layers"] = [1, 4, 6]
    assert planned(demo_run, cfg) == Counter({"train_sae": 2, "probe": 3, "disentangle": 3, "atlas": 3,
                                              "ablation": 1, **EXPORTS, **ATLAS, "splice": 1, "splice_report": 1,
                                              "causal": 1, "causal_report": 1, **DOWNSTREAM})  # measured: 6 (why old exports re-plan: unchecked)


def test_editing_a_script_reruns_only_its_rules_jobs(demo_run, tmp_path):
    """The `code` rerun trigger: a copy of the workflow whose probe script changed."""
    copy = tmp_path / "workflow"
    copy.mkdir()
    for part in ("Snakefile", "rules", "workflow_scripts", "schemas", "report"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, copy / part)
        elif src.exists():
            shutil.copy2(src, copy / part)
    assert planned(demo_run, demo_config(), snakefile=copy / "Snakefile") == Counter()
    script = copy / "workflow_scripts/probe.py"
    script.write_text(script.read_text() + "\n# an edit\n")
    assert planned(demo_run, demo_config(), snakefile=copy / "Snakefile") == Counter(
        {"probe": 9, **ABLATION, **EXPORTS, **DOWNSTREAM})
    assert planned(demo_run, demo_config(), "--rerun-triggers", "mtime", "params", "input",
                   snakefile=copy / "Snakefile") == Counter()


# ---------------------------------------------------------------- determinism, kills


# What a result file records about the run rather than the result: times, throughput, memory, a timestamp.
MEASURED_KEYS = {"wall_time_s", "train_time_s", "frames_per_s", "step_frames_per_s", "peak_rss_mb", "model_load_s",
                 "extraction_time_s", "model_time_s", "audio_s_per_s", "write_mb_per_s", "extracted_at"}


def _without_measurements(doc):
    if isinstance(doc, dict):
        return {k: _without_measurements(v) for k, v in doc.items() if k not in MEASURED_KEYS}
    if isinstance(doc, list):
        return [_without_measurements(v) for v in doc]
    return doc


def output_files(workdir: Path, outputs: list[str]) -> dict[str, object]:
    """Every file of the given outputs (files or folders, exports left out) by path: bytes, or for JSON the
    document without its MEASURED_KEYS."""
    workdir = Path(workdir)
    files = {}
    for out in outputs:
        root = workdir / out
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            rel = path.relative_to(workdir)
            if path.is_file() and "export" not in rel.parts:
                files[str(rel)] = (_without_measurements(json.loads(path.read_text())) if path.suffix == ".json"
                                   else path.read_bytes())
    return files


def assert_same_outputs(clean: Path, other: Path, outputs: list[str]) -> None:
    """The outputs' files equal the clean run's: byte for byte, JSON up to the run's own measurements."""
    a, b = output_files(clean, outputs), output_files(other, outputs)
    assert a and a.keys() == b.keys(), f"outputs differ in files: {sorted(a.keys() ^ b.keys())}"
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"outputs differ from the clean run's: {differ}"


def incomplete_outputs(workdir: Path) -> set[str]:
    """Outputs Snakemake has marked incomplete (.snakemake/incomplete: one file per output, its path in base64)."""
    from base64 import urlsafe_b64decode

    root = Path(workdir) / ".snakemake/incomplete"
    out = set()
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file() and path.name != "migration_underway":
            parts = [part.lstrip("@") for part in path.relative_to(root).parts]
            out.add(urlsafe_b64decode("".join(parts).encode()).decode())
    return out


def kill_when(workdir: Path, config: dict, ready, what: str, timeout: float = 900, targets=()) -> None:
    """Start Snakemake on `config` (towards `targets`, default all) in `workdir`, poll `ready()` every 10 ms, then
    SIGKILL Snakemake and every job (its whole process group: no clean-up runs). Fails if the run ends first or
    `ready` never holds."""
    cfg_path = write_config(workdir, config)
    cmd = [SNAKEMAKE, *targets, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile", str(cfg_path),
           "--resources", "gpu=1", "--cores", "2"]  # targets first: --configfile and --resources take lists
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"snakemake ended before {what}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_snakemake(workdir, "--unlock", config=config)  # the killed Snakemake left its lock


PAST_FIRST_EPOCH = re.compile(r"^epoch ([2-9]|\d\d+)/", re.M)


def sae_logs_in_training(workdir: Path) -> list[Path]:
    """train_sae logs that report an epoch after the first and not yet the job's closing line."""
    logs = workdir / "results/logs/train_sae"
    out = []
    for log in sorted(logs.rglob("*.log")) if logs.exists() else []:
        text = log.read_text(errors="replace").replace("\r", "\n")
        if PAST_FIRST_EPOCH.search(text) and "train_sae: best epoch" not in text:
            out.append(log)
    return out


def tiny_sae_dirs() -> list[str]:
    """The clip SAE folders of the tiny study (every node and sparsity)."""
    from audiosae import layout

    cfg = tiny_config()
    return [layout.sae_dir(m, l, layout.Rep.sae(layout.sparsity_str(s))) for m, spec in cfg["models"].items()
            for l in spec["layers"] for s in cfg["sae"]["sparsities"]]


def test_sigkill_during_sae_training_then_rerun_gives_identical_saes(demo_run, tmp_path):
    """Killed while an SAE trains (past its first epoch): its outputs are absent and marked incomplete, and the
    rerun's SAEs (weights, config, metrics, latents) equal a clean run's byte for byte. The run goes as far as the
    SAEs: what reads them is a function of these files (tests/test_slurm.py compares two whole runs' tables)."""
    workdir = tmp_path / "killed"
    workdir.mkdir()
    # The clean run's corpus, manifest and stores, their times kept: the killed run starts at the SAEs.
    for done in ("resources", "results/data", "results/embeddings"):
        shutil.copytree(demo_run / done, workdir / done, copy_function=shutil.copy2)
    saes = tiny_sae_dirs()
    targets = [f"{d}/metrics.json" for d in saes]
    kill_when(workdir, tiny_config(), lambda: bool(sae_logs_in_training(workdir)),
              "a train_sae job reached its second epoch", targets=targets)
    killed = sae_logs_in_training(workdir)
    assert killed, "the kill came after the training it waited for"
    marked = incomplete_outputs(workdir)
    for log in killed:  # results/logs/train_sae/{model}/layer{L}/sparsity{s}.log
        node = f"results/sae/{log.relative_to(workdir / 'results/logs/train_sae').with_suffix('')}"
        outputs = {f"{node}/{name}" for name in ("sae.safetensors", "config.json", "metrics.json", "latents.zarr")}
        assert outputs <= marked, f"{node}: outputs not marked incomplete ({sorted(outputs - marked)})"
        assert not any((workdir / o).exists() for o in outputs), f"{node}: an output of the killed job exists"
    # Not taken as complete: the next run plans the killed jobs again.
    again = planned(workdir, tiny_config(), "--rerun-incomplete", *targets)
    assert again["train_sae"] >= len(killed), again
    run_snakemake(workdir, "--rerun-incomplete", *targets)
    assert not incomplete_outputs(workdir)
    assert_same_outputs(demo_run, workdir, saes)


# ---------------------------------------------------------------- output cache across workflows


def test_second_checkout_takes_embeddings_from_the_output_cache(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    target = "results/embeddings/resemblyzer.zarr"
    first = run_snakemake(tmp_path / "one", target, "--cache", config=tiny_config(), env=env)
    assert "extract_embeddings" in first.stdout + first.stderr
    assert any(cache.iterdir()), "the first workflow stored nothing in the cache"
    second = run_snakemake(tmp_path / "two", target, "--cache", config=tiny_config(), env=env)
    out = second.stdout + second.stderr
    assert "from cache" in out, f"the second workflow did not use the cache:\n{out[-3000:]}"
    log = tmp_path / "two/results/logs/extract_embeddings/resemblyzer.log"
    assert not log.exists() or log.read_text() == "", "extraction ran again instead of coming from the cache"
    from audiosae import store

    assert store.read_index(tmp_path / "two" / target).equals(store.read_index(tmp_path / "one" / target))


# ---------------------------------------------------------------- profiles


@pytest.mark.parametrize("profile", ["demo", "local", "slurm"])
def test_profile_dry_run(profile, tmp_path):
    if profile == "slurm":
        import_or_missing("snakemake_executor_plugin_slurm", "pip install -e .[slurm] for the SLURM profile")
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n",
           "--profile", str(REPO / "profiles" / profile)]
    if profile != "demo":
        cmd += ["--configfile", str(REPO / "profiles/demo/demo.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # the demo's two models and their random-weights twins (controls.random_twin)
    assert "Job stats:" in out and re.search(r"extract_embeddings\s+4", out), out[-4000:]


def test_gpu_rules_declare_a_gpu():
    for smk, rule in (("embeddings.smk", "extract_embeddings"), ("sae.smk", "train_sae"), ("sae.smk", "train_sae_seed"),
                      ("frames.smk", "extract_frames"), ("frames.smk", "train_frame_sae"),
                      ("frames.smk", "train_frame_sae_seed")):
        text = (REPO / "rules" / smk).read_text()
        body = text.split(f"rule {rule}:", 1)[1].split("\nrule ", 1)[0]
        assert re.search(r"gpu\s*=\s*1", body), f"{rule} does not declare resources: gpu=1"


# ---------------------------------------------------------------- bad audio


def _corrupt_one_wav(workdir: Path) -> Path:
    wavs = sorted((workdir / "resources/synthetic").rglob("*.wav"))
    bad = wavs[len(wavs) // 2]
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return bad


def test_corrupt_wav_stops_the_run_naming_the_file(tmp_path):
    run_snakemake(tmp_path, "resources/synthetic", config=tiny_config())
    bad = _corrupt_one_wav(tmp_path)
    proc = run_snakemake(tmp_path, "results/data/manifest.csv", config=tiny_config(), check=False)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (tmp_path / "results/logs").rglob("*.log"))
    assert bad.name in proc.stdout + proc.stderr + logs
    assert not (tmp_path / "results/data/manifest.csv").exists()


def test_skip_mode_records_the_bad_file_and_goes_on(tmp_path):
    cfg = tiny_config(data={"on_bad_audio": "skip"})
    run_snakemake(tmp_path, "resources/synthetic", config=cfg)
    bad = _corrupt_one_wav(tmp_path)
    run_snakemake(tmp_path, "results/embeddings/resemblyzer.zarr", "results/data/attributes.parquet", config=cfg)
    skipped = pd.read_csv(tmp_path / "results/data/skipped.csv")
    assert len(skipped) == 1 and skipped["path"].iloc[0].endswith(bad.name)
    manifest = pd.read_csv(tmp_path / "results/data/manifest.csv")
    assert not manifest["path"].str.endswith(bad.name).any()
