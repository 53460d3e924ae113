"""Atomic outputs: a killed writer's temporary sibling is removed by the next writer, a live one is kept."""

import os
import subprocess
import sys

from audiosae.atomic import atomic_output, clear_stale, fresh_tmp_dir


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_the_next_writer_removes_a_killed_writers_leftovers_only(tmp_path):
    out = tmp_path / "layer3.zarr"
    dead = dead_pid()
    stale_store = tmp_path / f"layer3.zarr.tmp-{dead}.zarr"  # what atomic_output / a store leaves
    stale_store.mkdir()
    (stale_store / "chunk").write_bytes(b"x" * 1000)
    stale_hidden = tmp_path / f".layer3.zarr.tmp-{dead}"  # what fresh_tmp_dir leaves
    stale_hidden.mkdir()
    live = tmp_path / f"layer3.zarr.tmp-{os.getppid()}"  # a writer that still runs (this test's parent)
    live.mkdir()
    other = tmp_path / f"layer30.zarr.tmp-{dead}"  # another output's leftovers
    other.mkdir()
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "done").write_text("yes")
    assert (out / "done").read_text() == "yes"
    assert not stale_store.exists() and not stale_hidden.exists()
    assert live.exists() and other.exists()
    assert clear_stale(out) == []


def test_fresh_tmp_dir_is_empty_and_hidden_beside_its_output(tmp_path):
    out = tmp_path / "sparsity0.9"
    stale = tmp_path / f".sparsity0.9.tmp-{dead_pid()}"
    stale.mkdir()
    tmp = fresh_tmp_dir(out)
    assert tmp.parent == tmp_path and tmp.name == f".sparsity0.9.tmp-{os.getpid()}"
    assert tmp.is_dir() and not any(tmp.iterdir())
    assert not stale.exists()
