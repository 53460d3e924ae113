"""A loopback stand-in for the Hugging Face Hub: the calls snapshot_download makes, for one repository."""

from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator


class FakeHub(BaseHTTPRequestHandler):
    """Repo info, then one HEAD + GET per file, for `repo_id` at `commit` holding `files` {name: bytes}."""

    repo_id = "tiny-org/tiny-model"
    commit = "a" * 40
    files: dict[str, bytes] = {}
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
        prefix = f"/{self.repo_id}/resolve/"  # /{repo_id}/resolve/{revision}/{filename}
        if not self.path.startswith(prefix):
            return self._json(404, {"error": "Repository not found"}, "RepoNotFound")
        revision, name = self.path[len(prefix):].split("?")[0].split("/", 1)
        if revision != self.commit or name not in self.files:
            return self._json(404, {"error": "Entry not found"}, "EntryNotFound")
        data = self.files[name]
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.commit)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        type(self).requested.append(name)

    def do_HEAD(self):
        self._file(head=True)

    def do_GET(self):
        prefix = f"/api/models/{self.repo_id}/revision/"
        if self.path.startswith(prefix):
            revision = self.path[len(prefix):].split("?")[0]
            if revision not in ("main", self.commit):
                return self._json(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
            return self._json(200, {"id": self.repo_id, "modelId": self.repo_id, "sha": self.commit,
                                    "private": False, "siblings": [{"rfilename": n} for n in self.files]})
        if self.path.startswith("/api/models/"):
            return self._json(404, {"error": "Repository not found"}, "RepoNotFound")
        return self._file(head=False)


def hub_for_folder(folder: Path, repo_id: str, commit: str) -> type[FakeHub]:
    """A FakeHub serving every file of `folder` (a saved model) as `repo_id` at `commit`."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}
    return type("FolderHub", (FakeHub,), {"repo_id": repo_id, "commit": commit, "files": files, "requested": []})


@contextmanager
def serving(handler: type[FakeHub]) -> Iterator[str]:
    """Run `handler` on a loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
