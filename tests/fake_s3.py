"""A fake S3 on 127.0.0.1 (moto's server mode), so the s3:// code paths run for real without network.

pyarrow talks to it as to AWS: the endpoint comes from AWS_ENDPOINT_URL, credentials from the
standard AWS variables. `s3_bucket` gives each test an empty bucket of its own.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fake_s3():
    """The endpoint URL of a moto S3 server for the test run."""
    pytest.importorskip("moto.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}  # no instance-metadata lookups (no network here)


@pytest.fixture
def s3_bucket(fake_s3, monkeypatch):
    """(pyarrow S3FileSystem, bucket name): a new empty bucket, with the AWS variables pointing at it."""
    from pyarrow.fs import S3FileSystem

    for name, value in {**S3_ENV, "AWS_ENDPOINT_URL": fake_s3}.items():
        monkeypatch.setenv(name, value)
    fs = S3FileSystem(endpoint_override=fake_s3, allow_bucket_creation=True)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    fs.create_dir(bucket)
    return fs, bucket


def upload(fs, folder: Path, dest: str) -> None:
    """Copy a local folder's files (recursive) to `dest` ("bucket/prefix") on `fs`."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with fs.open_output_stream(f"{dest}/{path.relative_to(folder).as_posix()}") as f:
                f.write(path.read_bytes())


def tree(fs, dest: str) -> dict[str, bytes]:
    """{relative key: bytes} of every object below `dest` ("bucket/prefix")."""
    from pyarrow.fs import FileSelector, FileType

    infos = fs.get_file_info(FileSelector(dest, recursive=True, allow_not_found=True))
    out = {}
    for info in sorted(infos, key=lambda i: i.path):
        if info.type == FileType.File:
            with fs.open_input_file(info.path) as f:
                out[info.path[len(dest) + 1:]] = f.read()
    return out


def require_auth(endpoint: str, on: bool) -> None:
    """Make the fake S3 check credentials against its (empty) IAM, as AWS does, or stop checking."""
    body = b"0" if on else b"inf"
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})  # not a form: raw body
    urllib.request.urlopen(request, timeout=10).close()


__all__ = ["fake_s3", "s3_bucket", "upload", "tree", "require_auth", "S3_ENV"]
