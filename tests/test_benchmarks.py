"""Every script in benchmarks/ runs end to end at a toy size (its --tiny option).

The benchmarks call the package's public functions; an interface change that
breaks one should break this test, not a benchmark nobody runs. Numbers are not
asserted (speed lives in the benchmarks); the written results must be complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"

# script -> (extra arguments, result file under --out, keys the result must hold)
CASES = {
    "atlas": ([], "atlas.json", ["job_s", "statistics_s", "live_units"]),
    "disentangle": ([], "disentangle.json", []),
    "extract": (None, "extract.json", ["results"]),
    "sae_train": ([], "sae_train.json", ["ours_wall_s", "paper_wall_s", "sae_train_samples_per_s"]),
    "stability": ([], "stability.json", ["rows", "candidates", "seeds"]),
    "frames": ([], "frames.json", ["train_N", "train_4N", "peak_rss_ratio_4N_over_N", "store"]),
    "sae_step": (["--compile"], "sae_step.json", ["project_frames_per_s", "reference_dense_frames_per_s",
                                      "reference_sparse_frames_per_s", "ratio_project_over_sparse"]),
    "workflow": ([], "workflow.json", ["jobs", "job_s", "startup_s", "wall_s", "idle_share", "rules"]),
}


def test_every_benchmark_is_covered():
    assert sorted(p.stem for p in BENCH.glob("*.py")) == sorted(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_tiny(name, tmp_path):
    extra, result, keys = CASES[name]
    out = tmp_path / "out"
    # extract.py takes the JSON path, the others a folder
    target = ["--out", str(out / result)] if extra is None else ["--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--tiny", *target], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / result).read_text())
    for key in keys:
        assert key in doc, f"{result} lacks {key!r}"
    assert (out / result).with_suffix(".md").exists()


def _bench(run: Path, rel: str, seconds: float, end: float, log_line: str | None = None):
    tsv = run / "benchmarks" / "rules" / f"{rel}.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:0{int(seconds)}\t100\n")
    os.utime(tsv, (end, end))
    if log_line is not None:
        log = run / "logs" / f"{rel}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{log_line}\nthen the work\n")


def test_workflow_figures_from_a_run(tmp_path):
    """Per rule: jobs, job-seconds, logged start-up; idle share of 2 cores over the first start to the last end."""
    sys.path.insert(0, str(BENCH))
    try:
        import workflow
    finally:
        sys.path.remove(str(BENCH))
    from audiosae.jobs import STARTED

    run, t = tmp_path / "results", 1_000_000.0
    # probe a: 0-4 s, probe b: 0-2 s, report: 6-8 s (2 s of nothing between): 8 s wall, 8 job-s of 16 core-s
    _bench(run, "probe/m/layer1/original", 4.0, t + 4, f"{STARTED} 1.50 s after the interpreter started")
    _bench(run, "probe/m/layer1/sae0.9", 2.0, t + 2, f"{STARTED} 0.50 s after the interpreter started")
    _bench(run, "report", 2.0, t + 8)  # a log without the line: start-up unknown
    doc = workflow.summarise(workflow.read_jobs(run), cores=2)
    rules = {r["rule"]: r for r in doc["rules"]}
    assert (rules["probe"]["jobs"], rules["probe"]["job_s"], rules["probe"]["startup_s"]) == (2, 6.0, 2.0)
    assert rules["report"]["startup_s"] is None and doc["logged_jobs"] == 2
    assert doc["wall_s"] == 8.0 and doc["idle_share"] == 0.5  # busy: 2 cores x 2 s + 1 x 2 s + 1 x 2 s = 8 of 16


SNAKEMAKE_LOG = """Provided cores: 2
[Sun Dec  6 16:32:53 2026]
localrule extract_embeddings:
    output: results/embeddings/m.zarr
    log: results/logs/extract_embeddings/m.log
    jobid: 14
    threads: 2
Shell command: None
[Sun Dec  6 16:33:03 2026]
Finished jobid: 14 (Rule: extract_embeddings)
[Sun Dec  6 16:33:03 2026]
localrule probe:
    log: results/logs/probe/m/layer1/original.log
    benchmark: results/benchmarks/rules/probe/m/layer1/original.tsv
    jobid: 3
    threads: 1
[Sun Dec  6 16:33:07 2026]
Finished jobid: 3 (Rule: probe)
"""


def test_workflow_reads_the_snakemake_log(tmp_path):
    """Jobs without a benchmark file (extract_embeddings) are timed by the log; a job busies its threads."""
    sys.path.insert(0, str(BENCH))
    try:
        import workflow
    finally:
        sys.path.remove(str(BENCH))
    from audiosae.jobs import STARTED

    _bench(tmp_path / "results", "probe/m/layer1/original", 3.5, 0.0, f"{STARTED} 1.25 s after the interpreter")
    log = tmp_path / "run.log"
    log.write_text(SNAKEMAKE_LOG)
    doc = workflow.summarise(workflow.jobs_from_log(workflow.read_snakemake_log(log), tmp_path), cores=2)
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["extract_embeddings"]["job_s"] == 10.0 and rules["extract_embeddings"]["timed_by"] == "snakemake log"
    assert rules["probe"]["job_s"] == 3.5 and rules["probe"]["startup_per_job_s"] == 1.25  # the benchmark's seconds
    assert doc["wall_s"] == 14.0 and doc["idle_share"] == round(1 - (2 * 10 + 1 * 4) / 28, 3)
