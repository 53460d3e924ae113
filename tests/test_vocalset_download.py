"""Downloading and extracting the corpus zip, against a loopback HTTP server (no internet)."""

from __future__ import annotations

import hashlib
import io
import socket
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from audiosae.data.download import DownloadError, UnsafeArchiveError, extract_zip, fetch_and_extract
from audiosae.data.vocalset import scan_corpus

FAST = dict(retries=2, backoff_s=0.0, timeout=5.0, progress=False)


def wav_bytes(seconds: float = 0.05, sr: int = 8000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(int(seconds * sr)) * 0.1).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def vocalset_zip(extra: dict[str, bytes] | None = None, links: dict[str, str] | None = None) -> bytes:
    """A small zip in VocalSet v1.1's layout, plus `extra` entries and symbolic `links` (name -> target)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for singer, prefix in (("female1", "f1"), ("male2", "m2")):
            for technique in ("belt", "vibrato"):
                for vowel in ("a", "e"):
                    zf.writestr(f"FULL/{singer}/scales/{technique}/{prefix}_scales_{technique}_{vowel}.wav",
                                wav_bytes())
        zf.writestr("__MACOSX/FULL/._junk", b"resource fork")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


class Loopback:
    """A threaded HTTP server on 127.0.0.1 that serves byte strings, honours Range, and can cut a transfer."""

    def __init__(self, files: dict[str, bytes], cut_first_at: int | None = None):
        self.files = files
        self.cut_first_at = cut_first_at
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=", 1)[1].split("-", 1)[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                body = data[start:]
                if server.cut_first_at is not None and len(server.requests) == 1:
                    self.wfile.write(body[: server.cut_first_at])
                    self.wfile.flush()
                    self.close_connection = True  # hang up mid-file
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_good_download_extracts_and_a_verified_zip_is_not_fetched_again(tmp_path):
    data = vocalset_zip()
    archive, dest = tmp_path / "resources/VocalSet11.zip", tmp_path / "resources/VocalSet"
    with Loopback({"/VocalSet11.zip": data}) as srv:
        fetch_and_extract(srv.url("/VocalSet11.zip"), archive, dest, md5=md5(data), size=len(data), **FAST)
        assert archive.read_bytes() == data
        assert not archive.with_name(archive.name + ".part").exists()
        scan = scan_corpus(dest)
        assert len(scan.clips) == 8 and set(scan.clips["singer"]) == {"female1", "male2"}
        assert not (dest / "__MACOSX").exists()
        assert [p.name for p in dest.parent.iterdir() if ".tmp-" in p.name] == []

        # The zip is already there with the right md5: extraction only, no request.
        n = len(srv.requests)
        fetch_and_extract(srv.url("/VocalSet11.zip"), archive, dest, md5=md5(data), size=len(data), **FAST)
        assert len(srv.requests) == n


def test_md5_mismatch_is_a_clear_error_and_leaves_no_output(tmp_path):
    data = vocalset_zip()
    archive, dest = tmp_path / "VocalSet11.zip", tmp_path / "VocalSet"
    with Loopback({"/z.zip": data}) as srv, pytest.raises(DownloadError, match=r"md5 [0-9a-f]{32}, expected 0{32}"):
        fetch_and_extract(srv.url("/z.zip"), archive, dest, md5="0" * 32, size=len(data), **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_placed_zip_with_the_wrong_md5_is_reported_not_deleted(tmp_path):
    archive = tmp_path / "VocalSet11.zip"
    archive.write_bytes(vocalset_zip())
    with pytest.raises(DownloadError, match="not the expected file. Delete it"):
        fetch_and_extract("http://127.0.0.1:9/unused", archive, tmp_path / "VocalSet", md5="0" * 32, **FAST)
    assert archive.exists() and not (tmp_path / "VocalSet").exists()


@pytest.mark.parametrize("extra,links,match", [
    ({"FULL/../../escape.txt": b"x"}, None, r"'\.\.'"),
    ({"/etc/escape.txt": b"x"}, None, "absolute path"),
    (None, {"FULL/female1/out": "../../../outside"}, "link to"),
])
def test_unsafe_zip_entries_are_refused(tmp_path, extra, links, match):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(vocalset_zip(extra, links))
    dest = tmp_path / "out" / "VocalSet"
    with pytest.raises(UnsafeArchiveError, match=match):
        extract_zip(archive, dest, progress=False)
    assert not dest.exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_link_inside_the_folder_is_kept(tmp_path):
    archive = tmp_path / "ok.zip"
    archive.write_bytes(vocalset_zip(links={"FULL/female1/latest": "scales"}))
    dest = extract_zip(archive, tmp_path / "VocalSet", progress=False)
    assert (dest / "FULL/female1/latest").is_symlink()


def test_a_transfer_cut_mid_file_is_resumed_with_a_range_request(tmp_path):
    data = vocalset_zip(extra={"FULL/female1/scales/belt/big.bin": np.random.default_rng(0).bytes(300_000)})
    archive = tmp_path / "VocalSet11.zip"
    cut = len(data) // 3
    with Loopback({"/z.zip": data}, cut_first_at=cut) as srv:
        fetch_and_extract(srv.url("/z.zip"), archive, tmp_path / "VocalSet", md5=md5(data), size=len(data), **FAST)
    assert [r["range"] for r in srv.requests] == [None, f"bytes={cut}-"]
    assert archive.read_bytes() == data


def test_no_network_says_so_and_tells_where_to_place_the_zip(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    archive = tmp_path / "resources/VocalSet11.zip"
    with pytest.raises(DownloadError) as err:
        fetch_and_extract(f"http://127.0.0.1:{port}/VocalSet11.zip", archive, tmp_path / "resources/VocalSet",
                          md5="0" * 32, size=1234, **FAST)
    msg = str(err.value)
    assert "no network access" in msg and f"place it at {archive}" in msg and "md5 " + "0" * 32 in msg
    assert not (tmp_path / "resources/VocalSet").exists()


def test_http_404_names_the_url(tmp_path):
    with Loopback({}) as srv, pytest.raises(DownloadError, match="HTTP 404"):
        fetch_and_extract(srv.url("/missing.zip"), tmp_path / "a.zip", tmp_path / "VocalSet", **FAST)
