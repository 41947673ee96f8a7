"""Inputs and outputs named by URI (file://, s3://) through pyarrow's filesystems, on the local engine.

s3:// runs against a fake S3 server on 127.0.0.1 (moto); the Ray engine's URI test is in test_engines_ray.py.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import bad_images as bad
from conftest import DEMOS, edit_output
from editanything import imageio
from editanything.batch import sketch_folder
from editanything.cli import main
from editanything.recipe import read_recipe
from fake_s3 import fake_s3, require_auth, s3_bucket, tree, upload  # noqa: F401 (fixtures)


def _failed(err: str) -> list[str]:
    return sorted(line for line in err.splitlines() if line.startswith("failed:"))


def test_file_uris_write_the_bytes_of_local_paths_and_name_the_uris(tmp_path, capsys):
    src = bad.nested_corpus(tmp_path, every_kind=False)
    assert main(["sketch", str(src), "-o", str(tmp_path / "local"), "--workers", "2", "-q"]) == 1
    local_err = capsys.readouterr().err
    out_uri = (tmp_path / "uri").as_uri()
    assert main(["sketch", src.as_uri(), "-o", out_uri, "--workers", "2", "-q"]) == 1
    captured = capsys.readouterr()
    assert bad.file_tree(tmp_path / "uri") == bad.file_tree(tmp_path / "local")
    assert sorted(bad.file_tree(tmp_path / "uri")) == ["coffee.png", "palette.png", "trip/chelsea.png"]
    # the same failures, each named by its URI
    assert _failed(captured.err) == [line.replace(str(src), src.as_uri()) for line in _failed(local_err)]
    assert len(_failed(captured.err)) == 2 and f"outputs in {out_uri}" in captured.out
    # resumable through the URI too: a removed output is redone, the rest skipped
    (tmp_path / "uri" / "coffee.png").unlink()
    report = sketch_folder([src.as_uri()], out_uri, progress=False)
    assert [str(p) for p in report.done] == [(src / "coffee.jpg").as_uri()] and len(report.skipped) == 2
    assert bad.file_tree(tmp_path / "uri") == bad.file_tree(tmp_path / "local")


def test_s3_outputs_match_local_paths_and_a_rerun_skips_what_the_bucket_has(s3_bucket, tmp_path, capsys):
    fs, bucket = s3_bucket
    src = bad.nested_corpus(tmp_path, every_kind=False)
    upload(fs, src, f"{bucket}/photos")
    assert main(["sketch", str(src), "-o", str(tmp_path / "local"), "-q"]) == 1
    local_err = capsys.readouterr().err
    assert main(["sketch", f"s3://{bucket}/photos", "-o", f"s3://{bucket}/out", "--workers", "2", "-q"]) == 1
    captured = capsys.readouterr()
    assert tree(fs, f"{bucket}/out") == bad.file_tree(tmp_path / "local")
    assert _failed(captured.err) == [line.replace(str(src), f"s3://{bucket}/photos") for line in _failed(local_err)]
    assert "3 done, 0 skipped (already done), 2 failed" in captured.out
    fs.delete_file(f"{bucket}/out/trip/chelsea.png")
    assert main(["sketch", f"s3://{bucket}/photos", "-o", f"s3://{bucket}/out", "-q"]) == 1
    assert "1 done, 2 skipped (already done), 2 failed" in capsys.readouterr().out
    assert tree(fs, f"{bucket}/out") == bad.file_tree(tmp_path / "local")


def _count_pngs(fs, dest: str) -> int:
    """Names only: reading while the run writes would race its write-check object being deleted."""
    from pyarrow.fs import FileSelector

    return sum(i.path.endswith(".png") for i in fs.get_file_info(FileSelector(dest, allow_not_found=True)))


def test_a_killed_s3_run_leaves_no_partial_object_and_resumes(s3_bucket, tmp_path):
    fs, bucket = s3_bucket
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(60):
        shutil.copy(DEMOS / ("coffee.jpg", "chelsea.jpg")[i % 2], photos / f"p{i:03d}.jpg")
    upload(fs, photos, f"{bucket}/photos")
    out = f"s3://{bucket}/out"
    proc = subprocess.Popen([sys.executable, "-m", "editanything", "sketch", f"s3://{bucket}/photos", "-o", out,
                             "--workers", "1", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.time() + 120
    while time.time() < deadline and _count_pngs(fs, f"{bucket}/out") < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = tree(fs, f"{bucket}/out")
    assert 3 <= len(finished) < 60, "the run should be stopped midway"
    for name in finished:  # every object is a whole image (a truncated one raises), and nothing else is there
        assert name.startswith("p") and name.endswith(".png")
        assert imageio.read_image(f"{out}/{name}", gray=True).size > 0
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "one put per file, no upload left open"
    report = sketch_folder([f"s3://{bucket}/photos"], out, progress=False)
    assert len(report.skipped) == len(finished) and len(report.done) == 60 - len(finished) and not report.failed
    assert sorted(tree(fs, f"{bucket}/out")) == [f"p{i:03d}.png" for i in range(60)]


def test_an_edit_on_s3_records_the_uri_and_makes_the_local_pixels(s3_bucket, tmp_path):
    fs, bucket = s3_bucket
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "chelsea.jpg", photos / "chelsea.jpg")
    upload(fs, photos, f"{bucket}/photos")
    # not -q: a library first imported under -q keeps its bars off for the rest of the test process
    args = ["--box", "100,40,330,260", "--segmenter", "grabcut", "--recolor", "#2050ff"]
    assert main(["edit", str(photos), "-o", str(tmp_path / "local"), *args]) == 0
    assert main(["edit", f"s3://{bucket}/photos", "-o", f"s3://{bucket}/edits", *args]) == 0
    local = edit_output(tmp_path / "local", "chelsea")
    out = f"s3://{bucket}/edits/{local.name}"  # the same request: the same name
    assert read_recipe(out).inputs["image"] == f"s3://{bucket}/photos/chelsea.jpg"
    assert read_recipe(local).inputs["image"] == str(photos / "chelsea.jpg")
    assert (imageio.read_image(out) == imageio.read_image(local)).all()


def test_bad_uris_and_missing_credentials_stop_before_any_work(s3_bucket, fake_s3, tmp_path, capsys,  # noqa: F811
                                                                monkeypatch):
    fs, bucket = s3_bucket
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / "coffee.jpg")
    upload(fs, photos, f"{bucket}/photos")

    def error_of(*argv: str) -> str:
        assert main(["sketch", *argv, "-q"]) == 2
        captured = capsys.readouterr()
        assert not captured.out and len(captured.err.splitlines()) == 1, captured.err
        return captured.err

    assert "foo://x/y: cannot open this URI (Unrecognized filesystem type" in error_of("foo://x/y", "-o", str(tmp_path / "a"))
    assert "s3:///photos: cannot open this URI (Missing bucket name" in error_of(str(photos), "-o", "s3:///photos")
    err = error_of(str(photos), "-o", f"s3://no-such-{bucket}/out")
    assert f"s3://no-such-{bucket}/out: cannot write here" in err and "bucket does not exist" in err
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    require_auth(fake_s3, True)  # as AWS does: a request without valid credentials is refused
    try:
        err = error_of(f"s3://{bucket}/photos", "-o", f"s3://{bucket}/out")
    finally:
        require_auth(fake_s3, False)
    assert f"s3://{bucket}/out: cannot write here" in err and "AWS_ACCESS_KEY_ID" in err
    assert sorted(tree(fs, bucket)) == ["photos/coffee.jpg"] and not (tmp_path / "a").exists()


def _place(kind: str, local: Path, s3, key: str) -> str:
    """One folder named three ways: a local path, a file:// URI, or (for "s3") a key in the test bucket."""
    fs, bucket = s3
    if kind == "s3":
        return f"s3://{bucket}/{key}"
    return str(local / key) if kind == "path" else (local / key).as_uri()


def _outputs(kind: str, local: Path, s3, key: str) -> dict[str, bytes]:
    fs, bucket = s3
    return tree(fs, f"{bucket}/{key}") if kind == "s3" else bad.file_tree(local / key)


@pytest.mark.parametrize("source", ["path", "file", "s3"])
@pytest.mark.parametrize("dest", ["path", "file", "s3"])
def test_every_mix_of_paths_and_uris_in_and_out_runs_resumes_and_overwrites(source, dest, s3_bucket, tmp_path):
    fs, bucket = s3_bucket
    src = tmp_path / "photos"
    (src / "trip").mkdir(parents=True)
    for name, photo in (("coffee.jpg", "coffee.jpg"), ("trip/chelsea.jpg", "chelsea.jpg")):  # small: 18 runs
        Image.open(DEMOS / photo).resize((96, 64)).save(src / name)
    upload(fs, src, f"{bucket}/photos")
    inputs, out = _place(source, tmp_path, s3_bucket, "photos"), _place(dest, tmp_path, s3_bucket, "out")

    first = sketch_folder([inputs], out, workers=1, progress=False)
    assert (len(first.done), len(first.skipped), first.failed) == (2, 0, [])
    written = _outputs(dest, tmp_path, s3_bucket, "out")
    assert sorted(written) == ["coffee.png", "trip/chelsea.png"]
    again = sketch_folder([inputs], out, workers=1, progress=False)
    assert (len(again.done), len(again.skipped), again.failed) == (0, 2, [])
    redone = sketch_folder([inputs], out, workers=1, overwrite=True, progress=False)
    assert (len(redone.done), len(redone.skipped), redone.failed) == (2, 0, [])
    assert _outputs(dest, tmp_path, s3_bucket, "out") == written
    local = sketch_folder([str(src)], tmp_path / "reference", workers=1, progress=False)
    assert not local.failed and bad.file_tree(tmp_path / "reference") == written  # the same bytes every way


def test_same_file_compares_paths_file_uris_links_and_s3_in_any_mix(s3_bucket, tmp_path):
    from editanything.storage import Location, location, same_file

    fs, bucket = s3_bucket
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    (tmp_path / "link.jpg").symlink_to(photo)
    (tmp_path / "b.jpg").write_bytes(b"x")
    for twin in (photo, photo.as_uri(), tmp_path / "link.jpg", location(photo.as_uri())):
        assert same_file(photo, twin) and same_file(twin, photo)
    for other in (tmp_path / "b.jpg", tmp_path / "missing.jpg", f"s3://{bucket}/a.jpg"):
        assert not same_file(photo.as_uri(), other) and not same_file(other, photo)
    assert same_file(f"s3://{bucket}/a.jpg", location(f"s3://{bucket}/a.jpg"))
    assert not same_file(f"s3://{bucket}/a.jpg", f"s3://{bucket}/b.jpg")
    for place in (photo, location(photo.as_uri()), location(f"s3://{bucket}/a.jpg")):  # one interface for the batch code
        assert isinstance(place, Location) and place.exists() == (place != location(f"s3://{bucket}/a.jpg"))



def test_an_s3_object_is_checked_by_ranged_reads_before_it_is_read_whole(s3_bucket, monkeypatch, tmp_path):
    """A 20 MB object whose header claims 400 MP is refused after a few KiB, not downloaded."""
    import struct
    import zlib

    from editanything.errors import ImageError
    from editanything.imageio import read_image
    from editanything.storage import RemotePath

    fs, bucket = s3_bucket

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    with fs.open_output_stream(f"{bucket}/bomb.png") as f:
        f.write(header + chunk(b"IDAT", bytes(20 << 20)))
    fetched = []
    real_open, real_read = RemotePath.open_input, RemotePath.read_bytes

    class Counting:
        def __init__(self, native):
            self.native = native

        def __getattr__(self, name):
            return getattr(self.native, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.native.close()

        def read(self, *n):
            data = self.native.read(*n)
            fetched.append(len(data))
            return data

        def read_at(self, n, offset):
            data = self.native.read_at(n, offset)
            fetched.append(len(data))
            return data

    monkeypatch.setattr(RemotePath, "open_input", lambda self: Counting(real_open(self)))
    monkeypatch.setattr(RemotePath, "read_bytes", lambda self: fetched.append(-1) or real_read(self))
    with pytest.raises(ImageError, match=r"bomb.png: over the limit of 150,000,000 pixels"):
        read_image(f"s3://{bucket}/bomb.png")
    assert -1 not in fetched and 0 < sum(fetched) < 1 << 20


def test_keys_pyarrow_would_read_as_another_key_are_refused_at_planning_by_name(s3_bucket, fake_s3, tmp_path,
                                                                                capsys):
    boto3 = pytest.importorskip("boto3")
    fs, bucket = s3_bucket
    client = boto3.client("s3", endpoint_url=fake_s3)
    photo = (DEMOS / "coffee.jpg").read_bytes()
    odd = ["photos//double.jpg", "photos/./dot.jpg", "photos/a/../up.jpg"]
    for key in ["photos/good.jpg", *odd]:
        client.put_object(Bucket=bucket, Key=key, Body=photo)
    assert main(["sketch", f"s3://{bucket}/photos", "-o", str(tmp_path / "out"), "-q"]) == 1
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert sorted(failed) == sorted(f"failed: s3://{bucket}/{key}: an object key with an empty, '.' or '..' part "
                                    "(//, /./, /../) cannot be read by its exact name; rename the object"
                                    for key in odd), captured.err
    assert "1 done" in captured.out and [p.name for p in (tmp_path / "out").rglob("*.png")] == ["good.png"]
    assert "unexpected" not in captured.err


class _Recording:
    """A pyarrow filesystem that notes the paths it opens for writing."""

    def __init__(self, fs):
        self._fs, self.written = fs, []

    def open_output_stream(self, path, *args, **kwargs):
        self.written.append(path)
        return self._fs.open_output_stream(path, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._fs, name)


def test_a_large_s3_write_goes_through_a_marked_key_and_a_killed_ones_upload_is_aborted_next_run(
        s3_bucket, fake_s3, tmp_path, capsys):
    """An output of 10 MiB or more is a multipart upload: killed mid-way it stays "in progress" for ever.
    It is written under a key marked as ours, so the next run aborts the one a dead writer left, and
    only that one: not another program's, not a live writer's, not another host's recent one."""
    boto3 = pytest.importorskip("boto3")
    from dataclasses import replace

    from editanything.multipart import HOST_TAG, MULTIPART_BYTES, STALE_S
    from editanything.storage import location, write_atomic

    fs, bucket = s3_bucket
    client = boto3.client("s3", endpoint_url=fake_s3)
    big = os.urandom(MULTIPART_BYTES + 1024)
    # a whole write: through a marked temp key, then nothing left but the target
    target = location(f"s3://{bucket}/out/big.png")
    recording = _Recording(target.fs)
    write_atomic(replace(target, fs=recording), big, imageio._temp_prefix("big.png"), imageio.PARTIAL_SUFFIX)
    assert fs.open_input_file(f"{bucket}/out/big.png").read() == big
    [temp] = recording.written
    assert temp.startswith(f"{bucket}/out/.big.png.{os.getpid()}.{HOST_TAG}-") and temp.endswith(".partial")
    assert sorted(tree(fs, f"{bucket}/out")) == ["big.png"] and not client.list_multipart_uploads(Bucket=bucket).get("Uploads")

    # a writer killed mid-upload (the same write, SIGKILL once its first part is sent)
    code = ("import os, signal, sys\nfrom dataclasses import replace\nfrom editanything import imageio\n"
            "from editanything.storage import location, write_atomic\n"
            "target = location(sys.argv[1])\nfs = target.fs\n"
            "class Dying:\n"
            "    def open_output_stream(self, path):\n"
            "        stream = fs.open_output_stream(path)\n"
            "        stream.write(os.urandom(int(sys.argv[2])))\n"
            "        stream.flush()\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    def __getattr__(self, name):\n"
            "        return getattr(fs, name)\n"
            "write_atomic(replace(target, fs=Dying()), b'x' * int(sys.argv[2]), "
            "imageio._temp_prefix(target.name), imageio.PARTIAL_SUFFIX)\n")
    killed = subprocess.run([sys.executable, "-c", code, f"s3://{bucket}/out/coffee.png", str(MULTIPART_BYTES + 1024)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [dead] = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert dead["Key"].startswith("out/.coffee.png.")
    now = f"{int(time.time()):x}"
    others = {"out/coffee.png",  # another program's upload of that very key
              f"out/.coffee.png.{os.getpid()}.{HOST_TAG}-{now}-0123ab.partial",  # a live writer here
              f"out/.coffee.png.1.0badc0de-{now}-0123ab.partial"}  # another host's writer, started just now
    old = f"out/.coffee.png.1.0badc0de-{int(time.time()) - 2 * STALE_S:x}-0123ab.partial"  # long gone
    client.create_multipart_upload(Bucket=bucket, Key=old)
    for key in others:
        client.create_multipart_upload(Bucket=bucket, Key=key)

    src = tmp_path / "photos"
    src.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", src / "coffee.jpg")
    assert main(["sketch", str(src), "-o", f"s3://{bucket}/out", "-q"]) == 0
    assert "unexpected" not in capsys.readouterr().err
    assert {u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]} == others
    assert sorted(tree(fs, f"{bucket}/out")) == ["big.png", "coffee.png"]
