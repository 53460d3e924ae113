"""Fetch a corpus zip over HTTP and extract it safely.

``fetch_archive`` streams the file into ``<archive>.part`` with a progress bar,
resumes an interrupted transfer with an HTTP Range request, retries with
back-off, checks the size and md5, and only then renames it to ``<archive>``.
A zip already at ``<archive>`` with the right md5 is used as it is, which is how
an offline machine gets the data: place the zip there by hand.

``extract_zip`` refuses entries with absolute paths, ``..`` components or
symbolic links pointing out of the folder, extracts into a temporary sibling,
and renames it into place when complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from audiosae.atomic import atomic_output

CHUNK = 1 << 20
OFFLINE_RETRIES = 2  # retries when the server was never reached (no network, no DNS)


class DownloadError(RuntimeError):
    """The archive could not be fetched, or is not the expected file."""


class UnsafeArchiveError(DownloadError):
    """A zip entry would be written outside the extraction folder."""


def md5sum(path: Path | str, chunk: int = CHUNK) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _by_hand(url: str, archive: Path, size: int | None, md5: str | None) -> str:
    facts = ", ".join(x for x in (f"{size:,} bytes" if size else "", f"md5 {md5}" if md5 else "") if x)
    return (f"download {url} on a machine with network access{f' ({facts})' if facts else ''}, place it at "
            f"{archive}, and rerun: the workflow then checks and extracts it without the network")


def _is_offline(err: BaseException) -> bool:
    """A failure to reach the server at all (no route, no DNS, refused), as opposed to an HTTP answer."""
    if isinstance(err, urllib.error.HTTPError):
        return False
    if isinstance(err, urllib.error.URLError):
        return isinstance(err.reason, OSError)
    return isinstance(err, OSError)


def _stream(url: str, part: Path, size: int | None, timeout: float, progress: bool) -> None:
    """One attempt: append the rest of `url` to `part` (from its current length). Raises on a short read."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "audiosae"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have and size and have >= size:
            return  # the partial file is already complete
        raise
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        mode = "ab" if have else "wb"
        with open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                          desc=part.name, file=sys.stderr, disable=not progress,
                                          mininterval=2) as bar:
            got = have
            while block := response.read(CHUNK):
                fh.write(block)
                got += len(block)
                bar.update(len(block))
        if total is not None and got < total:
            # urllib returns an empty read, not an error, when the peer closes early.
            raise http.client.IncompleteRead(b"", total - got)


def fetch_archive(url: str, archive: Path | str, md5: str | None = None, size: int | None = None, *,
                  retries: int = 5, backoff_s: float = 2.0, timeout: float = 60.0, progress: bool = True) -> Path:
    """Make sure `archive` holds the file at `url` (right size and md5); download only what is missing."""
    archive = Path(archive)
    archive.parent.mkdir(parents=True, exist_ok=True)
    if archive.exists():
        _check(archive, md5, size, placed=True, url=url)
        print(f"{archive} is present and verified; not downloading", file=sys.stderr)
        return archive
    part = archive.with_name(archive.name + ".part")
    last: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            wait = min(backoff_s * 2 ** (attempt - 1), 60.0)
            print(f"download interrupted ({last}); retry {attempt}/{retries} in {wait:.0f} s, resuming from "
                  f"{part.stat().st_size if part.exists() else 0:,} bytes", file=sys.stderr)
            time.sleep(wait)
        try:
            _stream(url, part, size, timeout, progress)
            last = None
            break
        except urllib.error.HTTPError as err:
            last = err
            if 400 <= err.code < 500 and err.code not in (408, 429):
                raise DownloadError(f"{url} answered HTTP {err.code} {err.reason}; check data.vocalset.url, "
                                    f"or {_by_hand(url, archive, size, md5)}") from err
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            last = err
            if _is_offline(err) and not part.exists() and attempt >= min(retries, OFFLINE_RETRIES):
                break  # never reached the server: no point waiting through every retry
    if last is not None:
        if _is_offline(last) and not part.exists():
            raise DownloadError(f"cannot reach {url} ({getattr(last, 'reason', last)}): this machine seems to "
                                f"have no network access. Instead, {_by_hand(url, archive, size, md5)}") from last
        raise DownloadError(f"downloading {url} failed after {attempt + 1} attempts ({last}); rerun to resume "
                            f"from {part}, or {_by_hand(url, archive, size, md5)}") from last
    _check(part, md5, size, placed=False, url=url)
    os.replace(part, archive)
    return archive


def _check(path: Path, md5: str | None, size: int | None, *, placed: bool, url: str) -> None:
    """Raise if `path` has the wrong size or md5; a downloaded (not placed) bad file is deleted."""
    actual_size = path.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"has {actual_size:,} bytes, expected {size:,}"
    elif md5 is not None:
        actual = md5sum(path)
        if actual != md5.lower():
            problem = f"has md5 {actual}, expected {md5}"
    if problem is None:
        return
    if placed:
        raise DownloadError(f"{path} {problem}: it is not the expected file. Delete it to download it again, "
                            f"or replace it with the right file from {url}")
    path.unlink()
    raise DownloadError(f"the file downloaded from {url} {problem}; it was deleted. Rerun to download it again; "
                        f"if this repeats, check data.vocalset.url/md5/size")


# ---------------------------------------------------------------- extraction


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its creator meant it (UTF-8 names from tools that did not set the UTF-8 flag)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/")


def _safe_relative(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and len(path.parts[0]) == 2 and path.parts[0][1] == ":"):
        raise UnsafeArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing to extract the archive")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: entry {name!r} climbs out of the folder with '..'; refusing to "
                                 f"extract the archive")
    return path


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_zip(archive: Path | str, dest: Path | str, skip_prefixes: tuple[str, ...] = ("__MACOSX/",),
                progress: bool = True) -> Path:
    """Extract `archive` into the folder `dest` (replacing it) only if every entry stays inside it."""
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{archive} is not a valid zip ({err}); delete it and rerun to download it again") from err
    with zf:
        entries = []
        for info in zf.infolist():
            name = _entry_name(info)
            if name.startswith(skip_prefixes):
                continue
            rel = _safe_relative(name, archive)
            if _is_symlink(info):
                target = PurePosixPath(zf.read(info).decode("utf-8"))
                resolved = os.path.normpath(str(rel.parent / target))
                if target.is_absolute() or resolved == ".." or resolved.startswith("../"):
                    raise UnsafeArchiveError(f"{archive}: entry {name!r} is a link to {str(target)!r}, outside "
                                             f"the folder; refusing to extract the archive")
            entries.append((info, rel))
        total = sum(info.file_size for info, _ in entries)
        with atomic_output(dest) as tmp, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=f"extracting {archive.name}", file=sys.stderr,
                                              disable=not progress, mininterval=2) as bar:
            tmp.mkdir()
            root = tmp.resolve()
            for info, rel in entries:
                out = tmp / rel
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                # A link extracted earlier could redirect a later entry: check where it really lands.
                if not out.parent.resolve().is_relative_to(root):
                    raise UnsafeArchiveError(f"{archive}: entry {str(rel)!r} would be written outside the folder "
                                             f"through a link; refusing to extract the archive")
                if _is_symlink(info):
                    os.symlink(zf.read(info).decode("utf-8"), out)
                    continue
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                bar.update(info.file_size)
    return dest


def fetch_and_extract(url: str, archive: Path | str, dest: Path | str, md5: str | None = None,
                      size: int | None = None, **kwargs) -> Path:
    """Download (or reuse) the zip at `archive`, then extract it to `dest`."""
    progress = kwargs.get("progress", True)
    zip_path = fetch_archive(url, archive, md5, size, **kwargs)
    return extract_zip(zip_path, dest, progress=progress)
