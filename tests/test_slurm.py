"""profiles/slurm on a real SLURM: a single-node cluster on loopback (tests/slurm_cluster.py).

The study runs through snakemake-executor-plugin-slurm with the repository's
profile; only what the test cluster needs differs from it (`cluster_profile`):
its partition, a faster first status poll, and `--max-threads` for its small node.
A bad config value makes some jobs fail on the cluster; the failure is checked
for its SLURM job ids and logs, the value is fixed, and a second submission must
rerun only what had not finished. The final tables must equal those of a local
run of the same config.

Needs root (daemons, apt-get install slurm-wlm munge when missing); skips with
the reason elsewhere (fails under CI=true, see conftest.missing_prerequisite), or
with AUDIOSAE_NO_SLURM=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, import_or_missing, missing_prerequisite, tiny_config, write_config
from slurm_cluster import ClusterFailed, ClusterUnavailable, SlurmCluster

PROFILE = REPO / "profiles" / "slurm"
TIMING_COLUMNS = {"wall_time_s", "items_per_s"}  # how long a job took: the one thing allowed to differ
GPU_RULES = {"extract_embeddings", "train_sae", "train_sae_seed", "splice", "causal"}  # the paper's study: clip level, SAE seeds
RUN_TIMEOUT_S = 600

# The tiny study cut to one model, layer and sparsity: every stage of the DAG in 12 SLURM jobs (the time limit
# of the suite allows no more on 2 cores: each job costs two Snakemake start-ups and a status poll).
SLURM_STUDY = tiny_config(audio={"train_crops": 1}, sae={"sparsities": [0.5], "epochs": 6},
                          probe={"epochs": 20}, disentangle={"cv_folds": 2})
SLURM_STUDY["models"] = {"resemblyzer": {"source": "resemblyzer", "layers": [2]}}
# The failure: more cross-validation folds than test items makes every disentangle job stop with an
# error naming the key (the other jobs run on: the profile keeps going); the fix is the right value.
FAILING_RULE = "disentangle"
# A failure only the jobs can meet: every limit the config determines (disentangle.cv_folds against the test clips,
# ...) is refused before any job (audiosae.limits), so the first submission runs a copy of the workflow whose
# disentangle script fails inside the job.
JOB_FAILURE = "a disentangle job failing on purpose (tests/test_slurm.py)"


def broken_workflow(folder: Path) -> Path:
    """A copy of the workflow whose disentangle script raises once its log is open; returns its Snakefile."""
    folder.mkdir()
    for part in ("Snakefile", "rules", "workflow_scripts", "report", "envs"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, folder / part)
    script = folder / "workflow_scripts/disentangle.py"
    opened = 'sys.stderr = open(snakemake.log[0], "w", buffering=1)\n'
    text = script.read_text()
    assert opened in text, "workflow_scripts/disentangle.py no longer opens its log first"
    script.write_text(text.replace(opened, opened + f"raise RuntimeError({JOB_FAILURE!r})\n", 1))
    return folder / "Snakefile"

# ---------------------------------------------------------------- the profile itself (no cluster)


def test_profile_yaml_and_config_yaml_are_the_same():
    assert (PROFILE / "profile.yaml").read_text() == (PROFILE / "config.yaml").read_text(), \
        "profiles/slurm/config.yaml (read by older Snakemake) must be a copy of profile.yaml"


def test_every_profile_entry_is_commented():
    for line in (PROFILE / "profile.yaml").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"profiles/slurm/profile.yaml: entry without a comment: {line!r}"


LOCALRULES_SCRIPT = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                      config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
                      snakefile=Path(sys.argv[2]), workdir=Path(sys.argv[3]))._workflow
    print(" ".join(sorted(r.name for r in wf.rules if r.name in wf._localrules or r.norun)))
"""


def test_downloads_are_localrules(tmp_path):
    """Rules that need the network run on the submitting host, and so do the report's seconds-long rules
    (a dry run does not say which rules are local)."""
    proc = subprocess.run([sys.executable, "-c", LOCALRULES_SCRIPT, str(REPO / "config.yaml"), str(REPO / "Snakefile"),
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert set(proc.stdout.split()) == {"download_vocalset", "download_model", "all", "aggregate", "figures", "report",
                                        "atlas_report", "atlas_site", "controls_report", "export_sae",
                                        "export_sae_seed", "splice_report", "causal_report"}, proc.stdout


def test_paper_study_dry_run_asks_gpus_and_partition(tmp_path):
    """The paper's config through the profile: GPU rules carry gpu=1, every job the profile's partition."""
    import_or_missing("snakemake_executor_plugin_slurm", "pip install -e .[slurm] for the SLURM profile")
    proc = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n",
                           "--profile", str(PROFILE), "--configfile", str(REPO / "config.yaml")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    blocks = re.findall(r"^(?:rule|localrule|checkpoint|localcheckpoint) (\w+):\n((?:    .*\n)+)", out, re.M)  # download_model is a checkpoint
    assert {rule for rule, _ in blocks} >= GPU_RULES | {"download_model", "probe", "report"}, out[-3000:]
    for rule, block in blocks:
        resources = re.search(r"resources: (.*)", block)
        if rule == "all":
            continue
        assert resources and "slurm_partition=compute" in resources.group(1), (rule, block)
        assert bool(re.search(r"\bgpu=1\b", resources.group(1))) == (rule in GPU_RULES), (rule, block)
    # one splice job per node, AST included, and per node of each twin
    spliced = {re.search(r"wildcards: model=(\w+), layer=(\d+)", block).groups() for rule, block in blocks
               if rule == "splice"}
    paper = {(m, str(l)) for m, l in [("wavlm", 1), ("wavlm", 12), ("hubert", 3), ("hubert", 12), ("mert", 4),
                                      ("mert", 7), ("ast", 6), ("ast", 12)]}
    assert spliced == paper | {(f"{m}_random", l) for m, l in paper}, sorted(spliced)
    # one causal job per node too (the causal atlas: erasure and steering on the same splice mechanism)
    tested = {re.search(r"wildcards: model=(\w+), layer=(\d+)", block).groups() for rule, block in blocks
              if rule == "causal"}
    assert tested == spliced, sorted(tested)


# ---------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.environ.get("AUDIOSAE_NO_SLURM"):
        pytest.skip("AUDIOSAE_NO_SLURM is set")
    import_or_missing("snakemake_executor_plugin_slurm", "pip install -e .[slurm] for the SLURM test")
    if os.geteuid() != 0:
        missing_prerequisite("the SLURM test cluster needs root (munged/slurmd, apt-get install slurm-wlm munge)")
    state = tmp_path_factory.mktemp("slurm_state")
    c = SlurmCluster(state)
    try:
        c.start()
    except ClusterUnavailable as err:
        missing_prerequisite(str(err))
    except ClusterFailed as err:
        pytest.fail(f"{err}\n(AUDIOSAE_NO_SLURM=1 skips the SLURM test)")
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.slurm
def test_concurrent_gpu_jobs_get_their_own_device(cluster, tmp_path):
    """Two GPU jobs at once see different CUDA_VISIBLE_DEVICES; a third waits for a free GPU."""
    env = {**os.environ, **cluster.env}
    ids = [subprocess.run(["sbatch", "--parsable", "--gpus=1", "--mem=100", "-c1", "-D", str(tmp_path),
                           "-o", "/dev/null", "--wrap", "sleep 3"], capture_output=True, text=True, env=env,
                          check=True).stdout.strip() for _ in range(3)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = {j["JobId"]: j["JobState"] for j in cluster.jobs() if j["JobId"] in ids}
        if all(s == "COMPLETED" for s in states.values()) and len(states) == 3:
            break
        time.sleep(1)
    else:
        pytest.fail(f"GPU jobs did not finish: {states}\n{cluster.logs()}")
    jobs = {j["JobId"]: j for j in cluster.jobs() if j["JobId"] in ids}
    devices = {sid: dict(cluster.task_env()[sid])["batch"] for sid in ids}
    assert set(devices.values()) <= {"0", "1"}, devices
    if (os.cpu_count() or 1) >= 2:  # room for two one-CPU jobs: the first two ran together
        assert devices[ids[0]] != devices[ids[1]], devices
    assert jobs[ids[2]]["StartTime"] >= min(jobs[ids[0]]["EndTime"], jobs[ids[1]]["EndTime"]), jobs


def cluster_profile(folder: Path, cluster: SlurmCluster) -> Path:
    """profiles/slurm with the test cluster's partition and a faster first status poll; nothing else changed."""
    profile = yaml.safe_load((PROFILE / "profile.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = cluster.partition
    profile["slurm-init-seconds-before-status-checks"] = 2
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def run_on_slurm(workdir: Path, profile: Path, cluster: SlurmCluster,
                 snakefile: Path = REPO / "Snakefile") -> tuple[subprocess.CompletedProcess, float]:
    """Submit the study; Snakemake ignores SIGTERM while jobs run, so a hang is ended with SIGKILL, then unlocked."""
    cmd = ["timeout", "-s", "KILL", str(RUN_TIMEOUT_S), SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir),
           "--configfile", str(workdir / "study.yaml"), "--profile", str(profile),
           "--max-threads", str(os.cpu_count() or 1)]  # the node's CPUs: a bigger request would pend forever
    env = {**os.environ, "PYTHONHASHSEED": "0", **cluster.env}
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    wall = time.monotonic() - start
    if proc.returncode in (124, 137):
        subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
                        str(workdir / "study.yaml"), "--unlock"], capture_output=True, env=env)
        pytest.fail(f"snakemake on SLURM killed after {RUN_TIMEOUT_S} s\n{_tail(proc)}\n{cluster.logs()}")
    return proc, wall


# ---------------------------------------------------------------- reading what happened


SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
FAILED_LOG_BLOCK = re.compile(r"^Logfile [^\n]*:\n={80}\n.*?\n={80}\n", re.M | re.S)  # show-failed-logs quotes


def _tail(proc: subprocess.CompletedProcess, n: int = 6000) -> str:
    return f"--- stdout\n{proc.stdout[-n:]}\n--- stderr\n{proc.stderr[-n:]}"


def _headers(out: str) -> list[tuple[str, str, str]]:
    """(localrule|rule, rule name, snakemake job id) of every job this Snakemake started (not those quoted from logs)."""
    out = FAILED_LOG_BLOCK.sub("", out)
    return [(m[1], m[2], m[3]) for m in re.finditer(r"^(localrule|rule) (\w+):\n(?:    (?!jobid).*\n)*    jobid: (\d+)",
                                                    out, re.M)]


def _submissions(out: str) -> dict[str, dict]:
    """SLURM job id -> snakemake job id, rule and wildcard folder, from the plugin's submission lines."""
    jobs = {}
    for m in SUBMITTED.finditer(out):
        log = Path(m[3])
        rule_dir = next(p for p in log.parents if p.name.startswith("rule_"))
        wildcards = str(log.parent.relative_to(rule_dir)) if log.parent != rule_dir else ""
        jobs[m[2]] = {"jobid": m[1], "rule": rule_dir.name.removeprefix("rule_"), "wildcards": wildcards, "log": log}
    return jobs


def _check_submitted_as_headers(out: str, submitted: dict[str, dict]) -> set[str]:
    """Every non-local job of the run is one SLURM job; no localrule job is. Returns the local rules run."""
    headers = _headers(out)
    remote = Counter(rule for kind, rule, _ in headers if kind == "rule")
    local = {rule for kind, rule, _ in headers if kind == "localrule"}
    assert remote == Counter(j["rule"] for j in submitted.values()), (remote, submitted)
    assert not local & set(remote), local
    return local


# ---------------------------------------------------------------- the test


@pytest.mark.slurm
@pytest.mark.workflow
def test_study_on_slurm_matches_local_run(cluster, tmp_path):
    profile = cluster_profile(tmp_path / "profile", cluster)
    workdir, local = tmp_path / "slurm", tmp_path / "local"
    for d in (workdir, local):
        d.mkdir()
    write_config(local, SLURM_STUDY)

    # The reference: the same config run locally, alongside (the SLURM run mostly waits on polls).
    ref_log = tmp_path / "local.log"
    with open(ref_log, "w") as log:
        reference = subprocess.Popen([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(local), "--configfile",
                                      str(local / "study.yaml"), "--cores", "2", "--resources", "gpu=1"],
                                     stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        # 1. Jobs that fail: the disentangle jobs fail on the cluster, everything else finishes.
        write_config(workdir, SLURM_STUDY)
        first, wall_first = run_on_slurm(workdir, profile, cluster, broken_workflow(tmp_path / "broken"))
        out1 = first.stdout + first.stderr
        assert first.returncode != 0, f"the failing disentangle jobs did not fail the run:\n{_tail(first)}"
        sub1 = _submissions(out1)
        failed_ids = {sid for sid, j in sub1.items() if j["rule"] == FAILING_RULE}
        assert len(failed_ids) == 2, f"{sub1}\n{_tail(first)}"  # original and sae0.5
        for sid in failed_ids:
            assert f"SLURM-job '{sid}' failed" in out1, _tail(first)
            slurm_log = sub1[sid]["log"]
            assert str(slurm_log) in out1 and slurm_log.exists(), f"no SLURM log {slurm_log}:\n{_tail(first)}"
            assert f"Error in rule {FAILING_RULE}" in slurm_log.read_text(), slurm_log.read_text()[-3000:]
        assert out1.count(f"Error in rule {FAILING_RULE}:") >= 2, _tail(first)
        assert JOB_FAILURE in out1, "the rule log is not shown with the error"
        _check_submitted_as_headers(out1, sub1)

        # 2. Fixed, submitted again: only the failed jobs and what depends on them run.
        second, wall_second = run_on_slurm(workdir, profile, cluster)
        out2 = second.stdout + second.stderr
        assert second.returncode == 0, f"{_tail(second)}\n{cluster.logs()}"
        sub2 = _submissions(out2)
        # Ran here, not on the cluster: the report rules (seconds each; see rules/report.smk) and the target.
        assert _check_submitted_as_headers(out2, sub2) == {"aggregate", "figures", "report", "all"}
        done_before = {(j["rule"], j["wildcards"]) for sid, j in sub1.items() if sid not in failed_ids}
        rerun = {(j["rule"], j["wildcards"]) for j in sub2.values()}
        assert not rerun & done_before, f"resubmitted jobs that had finished: {rerun & done_before}"
        assert {(sub1[sid]["rule"], sub1[sid]["wildcards"]) for sid in failed_ids} <= rerun, rerun
    finally:
        try:
            reference.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            reference.kill()
            reference.wait()
    assert reference.returncode == 0, f"local reference run failed:\n{ref_log.read_text()[-6000:]}"

    # 3. What SLURM saw: every submission, GPUs only for GPU rules, each GPU job its own device.
    submitted = {**sub1, **sub2}
    jobs = {j["JobId"]: j for j in cluster.jobs() if j.get("WorkDir") == str(workdir)}
    assert set(jobs) == set(submitted), (sorted(jobs), sorted(submitted))
    task_env = cluster.task_env()
    for sid, sub in submitted.items():
        job = jobs[sid]
        assert job["Comment"].startswith(f"rule_{sub['rule']}"), job
        assert job["JobState"] == ("FAILED" if sid in failed_ids else "COMPLETED"), job
        steps = dict(task_env.get(sid, []))
        if sub["rule"] in GPU_RULES:
            assert job.get("TresPerJob") == "gres:gpu:1", job
            assert steps.get("batch") in {"0", "1"}, (sid, steps)
        else:
            assert "gpu" not in job.get("TresPerJob", ""), job
            assert steps.get("batch") == "none", (sid, steps)

    # 4. The science does not depend on where it ran.
    tables = sorted((local / "results/tables").glob("*.csv"))
    assert tables, "the local run wrote no tables"
    for table in tables:
        ours = workdir / "results/tables" / table.name
        assert ours.exists(), f"SLURM run lacks {table.name}"
        theirs, mine = pd.read_csv(table), pd.read_csv(ours)
        timing = [c for c in theirs.columns if c in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(mine.drop(columns=timing), theirs.drop(columns=timing), check_exact=True,
                                      obj=table.name)

    print(f"\nSLURM: {len(submitted)} jobs submitted ({len(sub1)} in the failing run, {len(sub2)} after the fix); "
          f"wall {wall_first:.0f} s + {wall_second:.0f} s; rules {dict(Counter(j['rule'] for j in submitted.values()))}")
