"""Where a finished run's time went: per rule, its jobs, their seconds, their start-up, and the idle cores.

Reads a run's results folder (never writes there):
- `benchmarks/rules/**.tsv`, Snakemake's benchmark file of every job: its wall
  seconds `s`; the file is written as the job ends, so its mtime minus `s` is when
  the job began. The rule is the folder under `rules/` (rule `train_sae_seed`
  writes under `train_sae/`, so it counts there).
- `logs/**.log`, each job's log at the benchmark's path (`.log` for `.tsv`): the
  line `audiosae.jobs.log_started` writes when the script's work begins, with the
  seconds since its interpreter started (Python, Snakemake's preamble, the
  script's imports). Runs from before that line existed show "-" there; for them,
  `--imports SRC` times each rule's script's top-level imports in fresh
  interpreters of a source tree (an estimate: no preamble, no load from beside).

- Snakemake's log of the run (`<run>/../.snakemake/log/`, the newest, or `--log`):
  when each job started and finished (1 s resolution) and its threads, for every
  job, those without a benchmark file too (`extract_embeddings` has none: Snakemake
  refuses benchmarks on cache-eligible rules). Rules with no benchmark file get
  their jobs and seconds from it.

The idle share is of the core-seconds between the first job's start and the last
job's end: 1 - (core-seconds busy) / (cores x wall), where at each moment the busy
cores are min(cores, the threads of the running jobs). From the Snakemake log when
there is one; else from the benchmark files, a job counting as one core. The gaps
are Snakemake's own work between jobs and the jobs that wait on one another (or on
a resource: the demo's `gpu=1` runs the GPU rules one at a time, on CPU too).

    python benchmarks/workflow.py --run results --cores 2                # a table on stdout
    python benchmarks/workflow.py --run results --out results/benchmarks  # also workflow.{json,md}
    python benchmarks/workflow.py --run /work/demo-base/results --imports /path/to/that/checkout
    python benchmarks/workflow.py --tiny --out /tmp/wf                    # a 5-job toy workflow, run, then read
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

STARTED = re.compile(r"audiosae job: work began (\d+(?:\.\d+)?) s after")


def bench_seconds(tsv: Path) -> float:
    """The wall seconds `s` of a Snakemake benchmark file (its first repeat)."""
    lines = tsv.read_text().splitlines()
    if len(lines) < 2:
        raise SystemExit(f"{tsv}: no data row (a benchmark file has a header and a row per repeat)")
    header = lines[0].split("\t")
    if "s" not in header:
        raise SystemExit(f"{tsv}: no column 's' in its header {header}")
    return float(lines[1].split("\t")[header.index("s")])


def startup_of(log: Path) -> float | None:
    """The seconds `audiosae.jobs.log_started` recorded in a job's log, None where it wrote no such line."""
    with open(log, errors="replace") as f:
        for line in f:
            if (m := STARTED.search(line)):
                return float(m.group(1))
    return None


def read_jobs(run: Path) -> list[dict]:
    """One row per benchmarked job (the run has no Snakemake log): rule (the folder under benchmarks/rules/), wall
    seconds, start, end, start-up seconds (None without the line)."""
    bench_root = run / "benchmarks" / "rules"
    if not bench_root.is_dir():
        raise SystemExit(f"{bench_root}: no such folder; --run takes a finished run's results/ folder")
    jobs = []
    for tsv in sorted(bench_root.rglob("*.tsv")):
        rel = tsv.relative_to(bench_root)
        seconds, end = bench_seconds(tsv), tsv.stat().st_mtime
        log = run / "logs" / rel.with_suffix(".log")
        startup = startup_of(log) if log.is_file() else None
        jobs.append({"rule": rel.parts[0] if len(rel.parts) > 1 else rel.stem, "job": str(rel.with_suffix("")),
                     "s": seconds, "start": end - seconds, "end": end, "startup_s": startup})
    if not jobs:
        raise SystemExit(f"{bench_root}: no benchmark files")
    return jobs


def read_snakemake_log(path: Path) -> list[dict]:
    """Every job a Snakemake log records as started and finished: rule, start, end (epoch s), threads, and the
    paths of its log and benchmark files where it has them."""
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
    started: dict[str, dict] = {}
    jobs, now, current = [], None, None
    for line in path.read_text(errors="replace").splitlines():
        if (m := stamp.match(line)):
            now = time.mktime(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"))
        elif (m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line)):
            current = {"rule": m.group(1), "start": now, "threads": 1}
        elif current is not None and (m := re.match(r"^\s+jobid: (\d+)$", line)):
            started[m.group(1)] = current
        elif current is not None and (m := re.match(r"^\s+threads: (\d+)$", line)):
            current["threads"] = int(m.group(1))
        elif current is not None and (m := re.match(r"^\s+(log|benchmark): (\S+)$", line)):
            current[m.group(1)] = m.group(2)
        elif (m := re.match(r"^Finished jobid: (\d+)", line)) and m.group(1) in started:
            job = started.pop(m.group(1))
            jobs.append({**job, "end": now, "s": now - job["start"]})
    return jobs


def jobs_from_log(logged: list[dict], workdir: Path) -> list[dict]:
    """The log's jobs with their benchmark's seconds (1 s timestamps where a job has no benchmark file) and the
    start-up its rule log records; paths are relative to `workdir`, the run's working directory."""
    jobs = []
    for j in logged:
        if j["rule"] == "all":
            continue
        seconds, startup = j["s"], None
        bench = workdir / j["benchmark"] if "benchmark" in j else None
        if bench is not None and bench.is_file():
            seconds = bench_seconds(bench)
        if "log" in j and (workdir / j["log"]).is_file():
            startup = startup_of(workdir / j["log"])
        jobs.append({**j, "s": seconds, "startup_s": startup, "benchmarked": bench is not None and bench.is_file()})
    return jobs


def idle_share(jobs: list[dict], cores: int) -> tuple[float, float]:
    """(wall seconds from the first start to the last end, share of its core-seconds no job used); a job uses its
    "threads" (1 where not given)."""
    events = sorted([(j["start"], j.get("threads", 1)) for j in jobs] + [(j["end"], -j.get("threads", 1)) for j in jobs])
    t0, t1 = events[0][0], max(j["end"] for j in jobs)
    busy, running, last = 0.0, 0, t0
    for t, step in events:
        busy += min(cores, running) * (t - last)
        running, last = running + step, t
    wall = t1 - t0
    return wall, (1 - busy / (cores * wall)) if wall > 0 else 0.0


def rule_scripts(root: Path) -> dict[str, Path]:
    """Benchmark folder name -> the glue script its rule runs, from rules/*.smk (`use rule A as B` inherits A's)."""
    blocks: dict[str, dict] = {}
    for smk in sorted((root / "rules").glob("*.smk")):
        name = None
        for line in smk.read_text().splitlines():
            if (m := re.match(r"^\s*rule (\w+):", line)):
                name = m.group(1)
                blocks[name] = {}
            elif (m := re.match(r"^\s*use rule (\w+) as (\w+)", line)):
                name = m.group(2)
                blocks[name] = {"parent": m.group(1)}
            elif line and not line[0].isspace():
                name = None
            elif name and (m := re.search(r'"([^"]*workflow_scripts/[^"]+\.py)"', line)):
                blocks[name]["script"] = (smk.parent / m.group(1)).resolve()
            elif name and (m := re.search(r'"results/benchmarks/rules/([^/"{]+)', line)):
                blocks[name]["bench"] = m.group(1).removesuffix(".tsv")
    out = {}
    for name, b in blocks.items():
        script = b.get("script") or blocks.get(b.get("parent"), {}).get("script")
        bench = b.get("bench") or blocks.get(b.get("parent"), {}).get("bench")
        if script and bench:
            out.setdefault(bench, script)
    return out


def import_seconds(script: Path, src: Path, repeats: int = 3) -> float:
    """Median wall seconds of a fresh interpreter that runs `script`'s top-level imports from source tree `src`."""
    tree = ast.parse(script.read_text(), filename=str(script))
    imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", imports], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if proc.returncode:
            raise SystemExit(f"{script}: its imports fail from {src}: {proc.stderr[-500:]}")
    return statistics.median(times)


def summarise(jobs: list[dict], cores: int, imports: dict[str, float] | None = None) -> dict:
    """Per rule and in all."""
    wall, idle = idle_share(jobs, cores)
    rules = {}
    for j in jobs:
        r = rules.setdefault(j["rule"], {"jobs": 0, "job_s": 0.0, "max_s": 0.0, "startup": [], "benchmarked": True})
        r["benchmarked"] &= j.get("benchmarked", True)
        r["jobs"] += 1
        r["job_s"] += j["s"]
        r["max_s"] = max(r["max_s"], j["s"])
        if j["startup_s"] is not None:
            r["startup"].append(j["startup_s"])
    rows = []
    for name, r in sorted(rules.items(), key=lambda kv: -kv[1]["job_s"]):
        rows.append({"rule": name, "jobs": r["jobs"], "job_s": round(r["job_s"], 1), "max_s": round(r["max_s"], 1),
                     "startup_s": round(sum(r["startup"]), 1) if r["startup"] else None,
                     "startup_per_job_s": round(statistics.mean(r["startup"]), 2) if r["startup"] else None,
                     "logged": len(r["startup"]),
                     "timed_by": "benchmark" if r["benchmarked"] else "snakemake log",
                     "imports_per_job_s": None if imports is None or name not in imports else round(imports[name], 2)})
    starts = [j["startup_s"] for j in jobs if j["startup_s"] is not None]
    return {"cores": cores, "jobs": len(jobs), "job_s": round(sum(j["s"] for j in jobs), 1),
            "startup_s": round(sum(starts), 1) if starts else None, "logged_jobs": len(starts),
            "timeline": "snakemake log" if "log" in jobs[0] or "benchmark" in jobs[0] else "benchmark files",
            "wall_s": round(wall, 1), "idle_share": round(idle, 3),
            "imports_estimate_s": (round(sum(imports[r["rule"]] * r["jobs"] for r in rows if r["rule"] in imports), 1)
                                   if imports else None),
            "rules": rows}


def markdown(doc: dict) -> str:
    def cell(v):
        return "-" if v is None else str(v)

    lines = ["| rule | jobs | job-s | longest s | start-up s (logged) | per job | imports per job (estimate) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in doc["rules"]:
        mark = " (seconds from Snakemake's log)" if r.get("timed_by") == "snakemake log" else ""
        lines.append(f"| {r['rule']}{mark} | {r['jobs']} | {r['job_s']} | {r['max_s']} | {cell(r['startup_s'])} | "
                     f"{cell(r['startup_per_job_s'])} | {cell(r['imports_per_job_s'])} |")
    lines.append(f"| **all** | {doc['jobs']} | {doc['job_s']} | | {cell(doc['startup_s'])} | | "
                 f"{cell(doc['imports_estimate_s'])} (x jobs) |")
    lines += ["", f"{doc['jobs']} jobs, {doc['job_s']} job-seconds in {doc['wall_s']} s of wall time on "
              f"{doc['cores']} cores: the cores sat idle {100 * doc['idle_share']:.0f} % of it (timeline: "
              f"{doc['timeline']}). Start-up logged by {doc['logged_jobs']} of {doc['jobs']} jobs."]
    return "\n".join(lines) + "\n"


TINY_SNAKEFILE = """
rule all:
    input: expand("results/out/{i}.txt", i=range(4)), "results/out/sum.txt"

rule work:
    output: "results/out/{i}.txt"
    log: "results/logs/work/{i}.log"
    benchmark: "results/benchmarks/rules/work/{i}.tsv"
    script: "work.py"

rule gather:
    input: expand("results/out/{i}.txt", i=range(4))
    output: "results/out/sum.txt"
    log: "results/logs/gather.log"
    benchmark: "results/benchmarks/rules/gather.tsv"
    script: "work.py"
"""

TINY_SCRIPT = """
import sys
sys.stderr = open(snakemake.log[0], "w", buffering=1)
import json  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402
log_started()
total = sum(i * i for i in range(200_000))
open(snakemake.output[0], "w").write(json.dumps(total))
"""


def run_tiny(workdir: Path) -> Path:
    """Run a 5-job toy workflow (4 parallel jobs, then one that gathers them) with Snakemake on 2 cores; return its
    results folder."""
    (workdir / "Snakefile").write_text(textwrap.dedent(TINY_SNAKEFILE))
    (workdir / "work.py").write_text(textwrap.dedent(TINY_SCRIPT))
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake)] if snakemake.exists() else [sys.executable, "-m", "snakemake"]
    proc = subprocess.run([*cmd, "--cores", "2", "all"], cwd=workdir, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"the tiny workflow in {workdir} failed:\n{proc.stderr[-3000:]}")
    return workdir / "results"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a finished run's results folder")
    ap.add_argument("--cores", type=int, help="the cores the run had (default: the log's 'Provided cores', else 2)")
    ap.add_argument("--log", type=Path, help="the run's Snakemake log (default: the newest in <run>/../.snakemake/log)")
    ap.add_argument("--imports", type=Path, help="a checkout whose rules' scripts' imports to time (the run's code)")
    ap.add_argument("--out", type=Path, help="also write workflow.json and workflow.md here")
    ap.add_argument("--tiny", action="store_true", help="run a 5-job toy workflow and read it (for the tests)")
    args = ap.parse_args(argv)
    if args.tiny == (args.run is not None):
        ap.error("give --run or --tiny")
    with tempfile.TemporaryDirectory() as tmp:
        run = run_tiny(Path(tmp)) if args.tiny else args.run
        log = args.log or max((run.parent / ".snakemake" / "log").glob("*.snakemake.log"), default=None)
        jobs = jobs_from_log(read_snakemake_log(log), run.parent) if log is not None else []
        if not jobs:  # no Snakemake log (or an empty one): the benchmark files alone
            log, jobs = None, read_jobs(run)
        cores = args.cores
        if cores is None:
            found = re.search(r"^Provided cores: (\d+)", log.read_text(errors="replace"), re.M) if log else None
            cores = int(found.group(1)) if found else 2
        imports = None
        if args.imports is not None:
            scripts = rule_scripts(args.imports)
            imports = {rule: import_seconds(scripts[rule], args.imports)
                       for rule in sorted({j["rule"] for j in jobs}) if rule in scripts}
        doc = summarise(jobs, cores, imports)
    doc["run"] = "tiny" if args.tiny else str(args.run)
    doc["snakemake_log"] = None if log is None or args.tiny else str(log)
    md = markdown(doc)
    print(md, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "workflow.json").write_text(json.dumps(doc, indent=1) + "\n")
        (args.out / "workflow.md").write_text(md)


if __name__ == "__main__":
    main()
