"""S3 multipart uploads that a killed writer left behind: written under a name that marks them as ours,
found and aborted by the next run.

pyarrow turns a write of 10 MiB or more into a multipart upload. A writer killed mid-upload (kill -9,
a lost node) leaves it "in progress" for ever: invisible to listings, billed as storage. So such a
write goes to a temp key beside its target, `.NAME.PID.HOST-TIME-RANDOM.partial` (the shape of a local
temp file, plus the writer's host and start time), and is then copied into place. A later run aborts
the uploads (and deletes the temp objects) of writers that are gone: on this host, a pid no longer
alive; on any host, one that started more than STALE_S ago, longer than any one write takes. Uploads
under other names are another writer's and never touched. Needs boto3 (pyarrow cannot list uploads).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
import uuid
from typing import Any, Callable

# pyarrow's S3 part size: a write this long is sent as a multipart upload (arrow s3fs.cc, kPartUploadSize)
MULTIPART_BYTES = 10 << 20
STALE_S = 3600
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]

log = logging.getLogger(__name__)


def temp_name(temp_prefix: str, temp_suffix: str) -> str:
    """The marked name of a temp key (`temp_prefix` carries the target's name and the writer's pid): the
    writer's host and start time (the store's own dates can't be trusted to be real), and a random part."""
    return f"{temp_prefix}{HOST_TAG}-{int(time.time()):x}-{uuid.uuid4().hex[:6]}{temp_suffix}"


def _left_behind(name: str, suffix: str, writer_alive: Callable[[str], bool], now: float) -> bool:
    """Whether the temp key `name` is of our shape and its writer is gone."""
    if not (name.startswith(".") and name.endswith(suffix)):
        return False
    marker = name[: -len(suffix)].rsplit(".", 1)[-1].split("-")
    if len(marker) != 3 or len(marker[0]) != 8:
        return False  # not ours
    try:
        started = int(marker[1], 16)
    except ValueError:
        return False
    if now - started > STALE_S:
        return True
    return marker[0] == HOST_TAG and not writer_alive(name)


def remove_left_behind(folder: Any, suffix: str, writer_alive: Callable[[str], bool]) -> int:
    """Abort the multipart uploads, and delete the temp objects, that dead writers left in `folder` (a
    storage.RemotePath; only s3:// ones have any); how many. A store that refuses the listing is left
    as it is."""
    from pyarrow.fs import FileSelector, FileType

    if folder.kind != "s3":
        return 0
    now = time.time()
    removed = 0
    try:
        infos = folder.fs.get_file_info(FileSelector(folder.path, allow_not_found=True))
    except OSError:
        infos = []
    for info in infos:
        if info.type == FileType.File and _left_behind(info.base_name, suffix, writer_alive, now):
            try:
                folder.fs.delete_file(info.path)
                removed += 1
            except OSError:
                pass
    client = _client(folder.fs)
    if client is None:
        return removed
    bucket, _, key = folder.path.partition("/")
    prefix = f"{key.rstrip('/')}/." if key else "."
    try:
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix,
                                                                        Delimiter="/")
        uploads = [u for page in pages for u in page.get("Uploads", [])]
    except Exception as exc:  # botocore's errors (no permission, no such bucket): housekeeping only
        log.warning("%s: cannot list its unfinished uploads (%s); none aborted", folder, exc)
        return removed
    for upload in uploads:
        name = upload["Key"].rsplit("/", 1)[-1]
        if _left_behind(name, suffix, writer_alive, now):
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                removed += 1
            except Exception as exc:
                log.warning("%s: cannot abort the unfinished upload of %s (%s)", folder, name, exc)
    return removed


def _client(fs):
    """A boto3 S3 client for the store and credentials of the pyarrow filesystem `fs`; None without boto3."""
    try:
        import boto3
    except ImportError:
        log.warning("uploads left by killed runs are not aborted: that needs boto3 (pip install boto3)")
        return None
    options = fs.__reduce__()[1][0]  # pyarrow's own settings of the filesystem (region, endpoint, keys)
    endpoint = options.get("endpoint_override") or None
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme') or 'https'}://{endpoint}"
    return boto3.client("s3", region_name=options.get("region") or None, endpoint_url=endpoint,
                        aws_access_key_id=options.get("access_key") or None,
                        aws_secret_access_key=options.get("secret_key") or None,
                        aws_session_token=options.get("session_token") or None)
