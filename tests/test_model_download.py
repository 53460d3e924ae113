"""download_model against a loopback stand-in for the Hugging Face Hub, and without network."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audiosae.encoders.download import DownloadError, download_model
from audiosae.encoders.hf import recorded_commit

REPO_ID = "tiny-org/tiny-model"
COMMIT = "a" * 40
FILES = {
    "config.json": b'{"model_type": "hubert"}',
    "preprocessor_config.json": b'{"sampling_rate": 16000}',
    "model.safetensors": b"\x00" * 300,
    "tf_model.h5": b"not for us",
}


class FakeHub(BaseHTTPRequestHandler):
    """The calls snapshot_download makes: repo info, then one HEAD + GET per file."""

    requested: list = []

    def log_message(self, *args):
        pass

    def _json(self, code, doc, error_code=None):
        body = json.dumps(doc).encode()
        self.send_response(code)
        if error_code:  # as the Hub does
            self.send_header("X-Error-Code", error_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, head: bool):
        prefix = f"/{REPO_ID}/resolve/"  # /{repo_id}/resolve/{revision}/{filename}
        if not self.path.startswith(prefix):
            return self._json(404, {"error": "Repository not found"}, "RepoNotFound")
        revision, name = self.path[len(prefix):].split("?")[0].split("/", 1)
        if revision != COMMIT or name not in FILES:
            return self._json(404, {"error": "Entry not found"}, "EntryNotFound")
        data = FILES[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        FakeHub.requested.append(name)

    def do_HEAD(self):
        self._file(head=True)

    def do_GET(self):
        prefix = f"/api/models/{REPO_ID}/revision/"
        if self.path.startswith(prefix):
            revision = self.path[len(prefix):].split("?")[0]
            if revision not in ("main", COMMIT):
                return self._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
            return self._json(200, {"id": REPO_ID, "modelId": REPO_ID, "sha": COMMIT, "private": False,
                                    "siblings": [{"rfilename": n} for n in FILES]})
        if self.path.startswith("/api/models/"):
            return self._json(404, {"error": "Repository not found"}, "RepoNotFound")
        return self._file(head=False)


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeHub.requested = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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
    assert not (dest / "tf_model.h5").exists() and "tf_model.h5" not in FakeHub.requested
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
