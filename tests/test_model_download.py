"""download_model against a loopback stand-in for the Hugging Face Hub, and without network."""

from __future__ import annotations

import json
import socket

import pytest

from audiosae.encoders.download import DownloadError, download_model
from audiosae.encoders.hf import recorded_commit
from fake_hub import FakeHub, serving

REPO_ID = "tiny-org/tiny-model"
COMMIT = "a" * 40
FILES = {
    "config.json": b'{"model_type": "hubert"}',
    "preprocessor_config.json": b'{"sampling_rate": 16000}',
    "model.safetensors": b"\x00" * 300,
    "tf_model.h5": b"not for us",
}


class TinyHub(FakeHub):
    repo_id, commit, files, requested = REPO_ID, COMMIT, FILES, []


@pytest.fixture
def hub():
    TinyHub.requested = []
    with serving(TinyHub) as url:
        yield url


@pytest.fixture(autouse=True)
def online(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)


def test_snapshot_of_the_resolved_commit_lands_atomically_with_its_record(hub, tmp_path):
    dest = tmp_path / "resources/models/tiny"
    record = download_model(REPO_ID, "main", dest, endpoint=hub)
    assert record["commit"] == COMMIT and record["revision_requested"] == "main"
    for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
        assert (dest / name).read_bytes() == FILES[name]
    assert not (dest / "tf_model.h5").exists() and "tf_model.h5" not in TinyHub.requested
    assert json.loads((dest / "audiosae_revision.json").read_text())["commit"] == COMMIT
    assert recorded_commit(dest) == COMMIT
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny"]  # no temporary sibling left


@pytest.mark.parametrize("repo_id, revision", [(REPO_ID, "b" * 40), ("nobody/nothing", "main")])
def test_unknown_model_or_revision_says_to_check_the_config(hub, tmp_path, repo_id, revision):
    dest = tmp_path / "models/tiny"
    with pytest.raises(DownloadError, match=r"does not exist on the Hub.*`id` and `revision`"):
        download_model(repo_id, revision, dest, endpoint=hub)
    assert not dest.exists() and not list(dest.parent.glob(".tiny.tmp-*"))


def test_no_network_says_so_and_how_to_provide_the_folder_by_hand(tmp_path):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "resources/models/wavlm"
    with pytest.raises(DownloadError) as err:
        download_model("microsoft/wavlm-base-plus", "main", dest, endpoint=f"http://127.0.0.1:{port}")
    msg = str(err.value)
    assert "cannot reach the Hugging Face Hub" in msg and "no network" in msg
    assert f"huggingface-cli download microsoft/wavlm-base-plus --revision main --local-dir {dest}" in msg
    assert not dest.exists() and not list(dest.parent.glob(".wavlm.tmp-*"))
