"""MODEL_WEIGHTS=gs://bucket/path.pth: a state dict read from Cloud Storage at start.

The object is downloaded once per process (google-cloud-storage, as the
service's own account: on Cloud Run the metadata server's credentials) into a
private temporary file, which the usual loader then reads like any other
weights file. A `gs://bucket/folder/` URI holds one `<model>.pth` per model,
as a local folder does (WeightsSource.origin names the object).

What goes wrong says how to fix it: a missing object or bucket, access denied
(the role to grant), no credentials at all, or an object above the size limit
(MODEL_WEIGHTS_MAX_BYTES), which is checked before anything is downloaded.
STORAGE_EMULATOR_HOST points the client at a local emulator (the tests do).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

SCHEME = "gs://"
TIMEOUT_SECONDS = 120.0


class Fetched(NamedTuple):
    """A downloaded object's local file, or why there is none."""

    path: Path | None
    problem: str | None = None


def split_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'path/in/bucket') of gs://bucket/path/in/bucket."""
    bucket, _, name = uri.removeprefix(SCHEME).partition("/")
    return bucket, name


def check_uri(uri: str) -> str | None:
    """Why `uri` cannot name weights in Cloud Storage, or None."""
    bucket, name = split_uri(uri)
    if not bucket or not name:
        return (
            f"MODEL_WEIGHTS={uri!r} names no object: use gs://<bucket>/<path>.pth "
            "(or gs://<bucket>/<folder>/ holding <model>.pth files)."
        )
    return None


@cache
def fetch(uri: str, max_bytes: int) -> Fetched:
    """Download gs://bucket/object once per process; never raises."""
    problem = check_uri(uri)
    if problem:
        return Fetched(None, problem)
    try:
        return _download(uri, max_bytes)
    except Exception as exc:  # every failure becomes the message a person can act on
        return Fetched(None, explain(uri, exc))


def _download(uri: str, max_bytes: int) -> Fetched:
    from google.cloud import storage

    started = time.perf_counter()
    bucket_name, name = split_uri(uri)
    client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or "_")
    blob = client.bucket(bucket_name).get_blob(name, timeout=TIMEOUT_SECONDS)
    if blob is None:
        return Fetched(
            None,
            f"MODEL_WEIGHTS={uri}: there is no object {name} in bucket {bucket_name} (or no "
            "such bucket). "
            f"List what is there with `gcloud storage ls gs://{bucket_name}/` and upload the "
            f"state dict with `gcloud storage cp <file>.pth {uri}`.",
        )
    if blob.size is not None and blob.size > max_bytes:
        return Fetched(None, _too_large(uri, blob.size, max_bytes))
    data = blob.download_as_bytes(timeout=TIMEOUT_SECONDS, checksum="md5")
    if len(data) > max_bytes:  # the object changed between the two calls
        return Fetched(None, _too_large(uri, len(data), max_bytes))
    folder = Path(tempfile.gettempdir()) / "model-weights"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}-{Path(name).name}"
    handle, partial = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(partial, target)
    log.info(
        "weights %s read from Cloud Storage: %.1f MB in %.2f s",
        uri,
        len(data) / 1e6,
        time.perf_counter() - started,
    )
    return Fetched(target)


def _too_large(uri: str, size: int, max_bytes: int) -> str:
    return (
        f"MODEL_WEIGHTS={uri} is {size} bytes, more than MODEL_WEIGHTS_MAX_BYTES={max_bytes}. "
        "Check that it is the state dict you meant, or raise the limit."
    )


def explain(uri: str, exc: Exception) -> str:
    """A download failure in words, with the fix."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    bucket, _ = split_uri(uri)
    if isinstance(exc, auth.DefaultCredentialsError):
        return (
            f"MODEL_WEIGHTS={uri} needs Google credentials, and there are none here. On Cloud "
            "Run the service's account provides them; on your machine run "
            "`gcloud auth application-default login`, or use a local file."
        )
    if isinstance(exc, (api.Forbidden, api.Unauthorized)):
        return (
            f"MODEL_WEIGHTS={uri}: access denied ({exc.message}). Let the service's account "
            f"read the bucket: gcloud storage buckets add-iam-policy-binding gs://{bucket} "
            "--member=serviceAccount:<the service's account> --role=roles/storage.objectViewer"
        )
    if isinstance(exc, api.NotFound):
        return (
            f"MODEL_WEIGHTS={uri}: the bucket {bucket} does not exist (or is not visible to "
            f"this account). Check its name with `gcloud storage ls`."
        )
    return f"MODEL_WEIGHTS={uri} could not be read from Cloud Storage: {type(exc).__name__}: {exc}"
