"""Each concurrent GPU job gets its own device, and a crashed job frees it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from audiosae.devices import gpu_slot

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from audiosae.devices import gpu_slot
    with gpu_slot(1) as dev:
        print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
        time.sleep(float(sys.argv[1]))
    """
)


@pytest.fixture
def pretend_two_gpus(tmp_path, monkeypatch):
    env = {**os.environ, "AUDIOSAE_GPU_COUNT": "2", "AUDIOSAE_GPU_LOCK_DIR": str(tmp_path)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("SLURM_JOB_ID", None)
    for k in ("AUDIOSAE_GPU_COUNT", "AUDIOSAE_GPU_LOCK_DIR"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return env


def _start(env, seconds):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(seconds)], env=env, stdout=subprocess.PIPE, text=True)


def test_two_concurrent_jobs_get_different_devices_and_a_third_waits(pretend_two_gpus):
    a = _start(pretend_two_gpus, 3)
    b = _start(pretend_two_gpus, 3)
    first = {a.stdout.readline().strip(), b.stdout.readline().strip()}
    assert first == {"0", "1"}
    t0 = time.monotonic()
    c = _start(pretend_two_gpus, 0)
    third = c.stdout.readline().strip()
    waited = time.monotonic() - t0
    for p in (a, b, c):
        p.wait(timeout=30)
    assert third in {"0", "1"}
    assert waited > 1.0, "the third job must wait for a free device, not share one"


def test_a_killed_job_releases_its_device(pretend_two_gpus):
    a = _start(pretend_two_gpus, 60)
    held = a.stdout.readline().strip()
    a.kill()
    a.wait()
    t0 = time.monotonic()
    b, c = _start(pretend_two_gpus, 1), _start(pretend_two_gpus, 1)
    got = {b.stdout.readline().strip(), c.stdout.readline().strip()}
    assert time.monotonic() - t0 < 5, "both devices must be free at once after the kill"
    for p in (b, c):
        p.wait(timeout=30)
    assert held in {"0", "1"} and got == {"0", "1"}


def test_environment_is_restored_after_the_block(pretend_two_gpus):
    with gpu_slot(1) as dev:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == str(dev)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_no_gpu_means_no_slot(monkeypatch):
    monkeypatch.setenv("AUDIOSAE_GPU_COUNT", "0")
    with gpu_slot(1) as dev:
        assert dev is None


def test_slurm_allocation_is_respected(pretend_two_gpus, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with gpu_slot(1) as dev:
        assert dev == 0 and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
