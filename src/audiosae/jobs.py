"""The line every glue script logs when its work begins: how long its process took to get there.

A Snakemake `script:` job is a fresh interpreter: Python starts, Snakemake's preamble
unpickles the job, the script imports what it needs, and only then does the work
begin. `log_started` measures that start-up from the kernel's record of when the
process began (Linux `/proc`), not from a clock the script reads itself, so the
interpreter's own start counts. `benchmarks/workflow.py` reads the line back from a
finished run's logs.
"""

from __future__ import annotations

import os
import sys

STARTED = "audiosae job: work began"
"""The start of the line `log_started` writes; benchmarks/workflow.py searches the logs for it."""


def process_age() -> float | None:
    """Seconds since this process was created, from /proc (10 ms resolution); None where there is no /proc."""
    try:
        with open("/proc/self/stat") as f:
            # field 22, starttime, in clock ticks after boot; the command name (field 2) may hold spaces
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def log_started(stream=None) -> float | None:
    """Write `STARTED` with the seconds since the interpreter started to `stream` (the job's log: sys.stderr, which
    every glue script points at its log first) and return them. Call it after the script's imports, before its
    work."""
    age = process_age()
    text = "unknown (no /proc)" if age is None else f"{age:.2f} s"
    print(f"{STARTED} {text} after the interpreter started (Python, Snakemake's preamble, imports)",
          file=stream or sys.stderr, flush=True)
    return age
