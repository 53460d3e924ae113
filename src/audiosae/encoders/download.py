"""Fetch one pinned revision of a Hugging Face model into resources/models/<name>/.

The revision is first resolved to its commit hash, then that exact commit is
downloaded into a temporary sibling folder, the commit is written into
`audiosae_revision.json`, and the folder is renamed into place: a killed
download leaves nothing that looks complete. Files for other frameworks
(TensorFlow, Flax, ONNX, Core ML, ...) are skipped.

This is the only code that touches the network; extraction then loads the
folder offline. Without network, the error says how to provide the folder by hand.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from audiosae.atomic import atomic_output
from audiosae.encoders.hf import REVISION_FILE

IGNORE_PATTERNS = ["*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "*.mlmodel", "flax_model*", "tf_model*",
                   "rust_model*", "onnx/*", "coreml/*", "openvino/*"]


class DownloadError(RuntimeError):
    """The model could not be fetched (no network, unknown id or revision)."""


def _by_hand(repo_id: str, revision: str, dest: Path) -> str:
    return (f"To provide the folder by hand, run on a machine with network\n"
            f"    huggingface-cli download {repo_id} --revision {revision} --local-dir {dest}\n"
            f"and copy that folder to {dest} here (its .cache/huggingface metadata records the commit)")


def _is_network_error(err: BaseException) -> bool:
    import requests
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (requests.ConnectionError, requests.Timeout, OfflineModeIsEnabled,
                            LocalEntryNotFoundError, ConnectionError, TimeoutError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def download_model(repo_id: str, revision: str, dest: str | Path, endpoint: str | None = None) -> dict:
    """Snapshot `repo_id` at `revision` into `dest` atomically; returns the record written there."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    dest = Path(dest)
    with atomic_output(dest) as tmp:
        try:
            info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision)
            commit = info.sha
            snapshot_download(repo_id, revision=commit, local_dir=str(tmp), endpoint=endpoint,
                              ignore_patterns=IGNORE_PATTERNS)
        except (RepositoryNotFoundError, RevisionNotFoundError, HfHubHTTPError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if not isinstance(err, (RepositoryNotFoundError, RevisionNotFoundError)) and status != 404:
                raise DownloadError(f"the Hub refused {repo_id} at revision {revision}: {err}") from err
            raise DownloadError(f"{repo_id} at revision {revision} does not exist on the Hub (or is private): "
                                f"check the model's `id` and `revision` in the config ({type(err).__name__})") from err
        except Exception as err:
            if _is_network_error(err):
                from huggingface_hub import constants

                raise DownloadError(f"cannot reach the Hugging Face Hub ({endpoint or constants.ENDPOINT}) to "
                                    f"download {repo_id} at revision {revision}: no network here? "
                                    + _by_hand(repo_id, revision, dest)) from err
            raise
        record = {"id": repo_id, "revision_requested": revision, "commit": commit,
                  "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (tmp / REVISION_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
