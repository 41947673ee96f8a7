"""The Ray engine: the same planner, bytes, names and report as the local process pool.

One local Ray (2 CPUs) serves the whole module; the two-node test starts its own simulated cluster.
"""

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import bad_images as bad
from conftest import DEMOS, ROOT, edit_output
from editanything import imageio
from editanything.batch import edit_folder, sketch_folder
from editanything.cli import main
from editanything.errors import InvalidInputError
from fake_s3 import S3_ENV, fake_s3, s3_bucket, tree, upload  # noqa: F401 (fixtures)
from ray_hooks import CRASH_SPEC_ENV, LOAD_LOG_ENV


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One local Ray for the test run; yields its address. Workers log every generator they build, and
    have AWS credentials in their environment as every node of a cluster that reads s3:// needs."""
    import ray

    log = tmp_path_factory.mktemp("ray") / "generator-loads.log"
    log.touch()
    (log.parent / "crash-spec").touch()
    paths = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={
        "worker_process_setup_hook": "ray_hooks.setup",
        "env_vars": {LOAD_LOG_ENV: str(log), CRASH_SPEC_ENV: str(log.parent / "crash-spec"), "PYTHONPATH": paths,
                     "HF_HUB_OFFLINE": "1", **S3_ENV},
    })
    try:
        yield ray.get_runtime_context().gcs_address, log
    finally:
        ray.shutdown()


def _copies(folder: Path, count: int, names=("coffee.jpg", "chelsea.jpg", "rocket.jpg")) -> Path:
    folder.mkdir()
    for i in range(count):
        shutil.copy(DEMOS / names[i % len(names)], folder / f"p{i:03d}.jpg")
    return folder


def test_sketch_on_ray_is_byte_identical_to_local_and_names_failures(ray_local, tmp_path, capsys):
    src = bad.nested_corpus(tmp_path)
    assert main(["sketch", str(src), "-o", str(tmp_path / "local"), "--workers", "2", "-q"]) == 1
    local_err = capsys.readouterr().err
    assert main(["sketch", str(src), "-o", str(tmp_path / "ray"), "--engine", "ray", "-q"]) == 1
    captured = capsys.readouterr()
    local, remote = bad.file_tree(tmp_path / "local"), bad.file_tree(tmp_path / "ray")
    assert sorted(remote) == ["coffee.png", "palette.png", "ramp16.png", "rotated.png", "trip/chelsea.png",
                              "trip/cmyk.png"]
    assert remote == local
    failed = sorted(line for line in captured.err.splitlines() if line.startswith("failed:"))
    assert failed == sorted(line for line in local_err.splitlines() if line.startswith("failed:"))
    assert len(failed) == 2 and "broken.jpg" in failed[0] and "notes.jpg" in failed[1]
    assert "6 done, 0 skipped (already done), 2 failed in" in captured.out


def test_edit_on_ray_matches_local_and_loads_the_model_once_per_actor(ray_local, tiny_checkpoints, tmp_path):
    from editanything.generate import GenerationParams
    from editanything.pipeline import EditRequest
    from editanything.types import Prompt

    _, load_log = ray_local
    root, _ = tiny_checkpoints
    photos = _copies(tmp_path / "photos", 4, names=("chelsea.jpg",))
    request = EditRequest(mode="replace", selection=Prompt(boxes=[(100, 40, 330, 260)]),
                          params=GenerationParams(prompt="a blue mug", steps=2, seed=7, resolution=64))
    editor = {"segmenter": "grabcut", "generator": str(root / "sd15-inpainting"), "detector": None}
    # the same job: two workers of one CPU thread each (the recipe records the threads, which set the last bits)
    local = edit_folder([photos], tmp_path / "local", request, editor=editor, workers=2, progress=False)
    before = load_log.read_text().split()
    remote = edit_folder([photos], tmp_path / "ray", request, editor=editor, engine="ray", workers=2, progress=False)
    assert len(local.done) == len(remote.done) == 4 and not local.failed and not remote.failed
    for name in sorted(bad.file_tree(tmp_path / "local")):
        ours, theirs = tmp_path / "ray" / name, tmp_path / "local" / name
        assert imageio.read_png_text(ours) == imageio.read_png_text(theirs), name  # the recipes
        assert (imageio.read_image(ours) == imageio.read_image(theirs)).all(), name
    assert bad.file_tree(tmp_path / "ray") == bad.file_tree(tmp_path / "local")  # and so the very bytes
    loads = load_log.read_text().split()[len(before):]
    assert 1 <= len(loads) <= 2 and len(set(loads)) == len(loads), f"one load per actor, got {loads}"


@pytest.fixture
def crash_spec(ray_local):
    """The file naming the photos a Ray worker dies on (read by tests/ray_hooks.py); emptied after the test."""
    path = ray_local[1].parent / "crash-spec"
    yield path
    path.write_text("")


def test_a_worker_that_dies_is_retried_and_every_output_is_written_once(crash_spec, tmp_path):
    photos = _copies(tmp_path / "photos", 6)
    marker = tmp_path / "crashed"
    # p002 kills its worker once (a lost node, say); p004 kills it on every attempt
    crash_spec.write_text(f"p002.jpg={marker},p004.jpg")
    report = sketch_folder([photos], tmp_path / "out", engine="ray", progress=False)
    assert marker.exists(), "the worker should have died on p002.jpg"
    assert sorted(p.name for p in report.done) == ["p000.jpg", "p001.jpg", "p002.jpg", "p003.jpg", "p005.jpg"]
    assert [(p.name, why) for p, why in report.failed] == [("p004.jpg", "its worker died 4 times on this file "
                                                                        "(out of memory?)")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p000.png", "p001.png", "p002.png",
                                                                    "p003.png", "p005.png"]
    sketch_folder([photos], tmp_path / "local", workers=1, progress=False)
    local = bad.file_tree(tmp_path / "local")
    del local["p004.png"]
    assert bad.file_tree(tmp_path / "out") == local


def test_blocks_of_many_jobs_and_a_file_that_kills_its_worker_there_fails_alone(crash_spec, tmp_path):
    from editanything.engines.ray import block_rows, job_table

    photos = _copies(tmp_path / "photos", 48)
    assert block_rows(48, 2) == 3 and block_rows(100_000, 2) == 1024 and block_rows(5, 2) == 1
    jobs = [SimpleNamespace(source=p, output=tmp_path / "out" / p.name) for p in sorted(photos.iterdir())]
    offsets, table = job_table(jobs)
    assert len(offsets) == 49 and pickle.loads(table[offsets[7]:offsets[8]]) == (jobs[7].source, jobs[7].output)
    marker = tmp_path / "crashed"
    # in blocks of 3: p010 kills its worker once, p031 on every attempt; their blocks' other rows run again alone
    crash_spec.write_text(f"p010.jpg={marker},p031.jpg")
    report = sketch_folder([photos], tmp_path / "out", engine="ray", workers=2, progress=False)
    assert marker.exists()
    assert [(p.name, why) for p, why in report.failed] == [("p031.jpg", "its worker died 4 times on this file "
                                                                        "(out of memory?)")]
    assert len(report.done) == 47 and len(set(report.done)) == 47
    sketch_folder([photos], tmp_path / "local", workers=1, progress=False)
    local = bad.file_tree(tmp_path / "local")
    del local["p031.png"]
    assert bad.file_tree(tmp_path / "out") == local


def test_a_stopped_ray_run_resumes_without_duplicates_or_half_files(ray_local, tmp_path):
    address, _ = ray_local
    photos = _copies(tmp_path / "photos", 120)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "editanything", "sketch", str(photos), "-o", str(out), "--engine", "ray",
           "--ray-address", address, "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)  # Ray ends the dead driver's actors
    finished = sorted(out.glob("*.png"))
    assert 3 <= len(finished) < 120, "the run should be stopped midway"
    for path in finished:  # every file at its final name is a whole image (a truncated one raises)
        assert imageio.read_image(path, gray=True).size > 0
    report = sketch_folder([photos], out, engine="ray", progress=False)
    assert len(report.skipped) == len(finished) and len(report.done) == 120 - len(finished) and not report.failed
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:03d}.png" for i in range(120)]  # no temp files left


def test_two_nodes_share_the_job_and_write_the_same_bytes(ray_local, tmp_path):
    from ray.cluster_utils import Cluster

    photos = _copies(tmp_path / "photos", 16)
    sketch_folder([photos], tmp_path / "local", workers=1, progress=False)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        result = subprocess.run(
            [sys.executable, "-m", "editanything", "sketch", str(photos), "-o", str(tmp_path / "ray"),
             "--engine", "ray", "--ray-address", cluster.address, "-q"],
            capture_output=True, text=True, timeout=300)
    finally:
        cluster.shutdown()
    assert result.returncode == 0, result.stderr
    assert "ray: jobs ran on 2 nodes" in result.stderr
    assert "16 done, 0 skipped (already done), 0 failed in" in result.stdout
    assert bad.file_tree(tmp_path / "ray") == bad.file_tree(tmp_path / "local")


def test_base_import_does_not_import_ray():
    code = "import sys, editanything, editanything.batch, editanything.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_options_are_checked_before_any_work(ray_local, tmp_path, capsys):
    photos = _copies(tmp_path / "photos", 1)
    assert main(["sketch", str(photos), "-o", str(tmp_path / "a"), "--gpus-per-worker", "0.5"]) == 2
    assert "--gpus-per-worker and --cpus-per-worker need --engine ray" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="the Ray cluster has 0 GPUs"):
        sketch_folder([photos], tmp_path / "b", engine="ray", gpus_per_worker=0.5, progress=False)
    assert not (tmp_path / "a").exists() and not list((tmp_path / "b").rglob("*"))  # nothing written


def test_cpu_workers_ask_for_several_cpus_capped_by_the_largest_node(ray_local, tmp_path, capsys):
    import ray

    from editanything.engines.ray import RayEngine

    assert RayEngine(cpus_per_worker=2)._cpus(ray) == 2 and RayEngine(cpus_per_worker=2)._pool_size(ray, 2) == 1
    assert RayEngine(cpus_per_worker=16)._cpus(ray) == 2  # the local Ray has one node of 2 CPUs
    assert RayEngine()._pool_size(ray, RayEngine()._cpus(ray)) == 2
    with pytest.raises(InvalidInputError, match="--cpus-per-worker must be a whole number >= 1"):
        RayEngine(cpus_per_worker=0)
    photos = _copies(tmp_path / "photos", 3)
    assert main(["sketch", str(photos), "-o", str(tmp_path / "local"), "-q"]) == 0
    assert main(["sketch", str(photos), "-o", str(tmp_path / "ray"), "--engine", "ray", "--cpus-per-worker", "2",
                 "-q"]) == 0
    assert bad.file_tree(tmp_path / "ray") == bad.file_tree(tmp_path / "local") and len(bad.file_tree(tmp_path / "ray")) == 3
    assert main(["sketch", str(photos), "-o", str(tmp_path / "x"), "--cpus-per-worker", "2"]) == 2
    assert "need --engine ray" in capsys.readouterr().err


def test_sketch_on_ray_reads_and_writes_s3_like_a_local_run(ray_local, s3_bucket, tmp_path, capsys):
    fs, bucket = s3_bucket
    src = bad.nested_corpus(tmp_path)
    upload(fs, src, f"{bucket}/photos")
    assert main(["sketch", str(src), "-o", str(tmp_path / "local"), "--workers", "2", "-q"]) == 1
    local_err = capsys.readouterr().err
    # the workers get each file's filesystem (its endpoint too) with the job; credentials are their own
    assert main(["sketch", f"s3://{bucket}/photos", "-o", f"s3://{bucket}/out", "--engine", "ray", "-q"]) == 1
    captured = capsys.readouterr()
    assert tree(fs, f"{bucket}/out") == bad.file_tree(tmp_path / "local")
    failed = sorted(line for line in captured.err.splitlines() if line.startswith("failed:"))
    assert failed == sorted(line.replace(str(src), f"s3://{bucket}/photos") for line in local_err.splitlines()
                            if line.startswith("failed:"))
    assert len(failed) == 2 and f"outputs in s3://{bucket}/out" in captured.out


def test_an_unreachable_ray_address_fails_in_seconds(tmp_path, capsys, monkeypatch):
    import socket

    photos = _copies(tmp_path / "photos", 1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    for argv, env in ((["--ray-address", address], None), ([], address)):
        if env:
            monkeypatch.setenv("RAY_ADDRESS", env)
        start = time.monotonic()
        assert main(["sketch", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray", "-q", *argv]) == 2
        assert time.monotonic() - start < 10
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot reach the Ray cluster at {address}") and len(err.splitlines()) == 1
        assert "`ray start --head`" in err and "RAY_ADDRESS" in err
    assert not list((tmp_path / "out").iterdir())  # nothing written


def test_a_generative_sketch_on_ray_asks_for_several_cpus_per_actor_unless_told():
    import argparse

    from editanything.cli.engine_opts import engine_from_args
    from editanything.engines.ray import HEAVY_CPUS

    args = argparse.Namespace(engine="ray", ray_address=None, gpus_per_worker=None, cpus_per_worker=None, nice=None)
    assert engine_from_args(args, None, heavy=True).cpus_per_worker == HEAVY_CPUS
    assert engine_from_args(args, None).cpus_per_worker is None
    args.cpus_per_worker = 1
    assert engine_from_args(args, None, heavy=True).cpus_per_worker == 1
    args.nice = 3  # --nice reaches the actors as the local pool's workers
    assert engine_from_args(args, None).nice == 3


def test_an_edit_with_a_local_diffusion_model_gives_each_ray_actor_several_cpus(ray_local, tiny_checkpoints, tmp_path):
    from editanything.recipe import read_recipe

    root, _ = tiny_checkpoints
    photos = _copies(tmp_path / "photos", 1, names=("chelsea.jpg",))
    assert main(["edit", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray", "--box", "100,40,330,260",
                 "--segmenter", "grabcut", "--model", str(root / "sd15-inpainting"), "--prompt", "a blue mug",
                 "--steps", "2", "--seed", "7", "--resolution", "64", "-q"]) == 0
    # 4 CPUs asked, capped at the local Ray's one node of 2: the actor generated with 2 threads, not 1
    assert read_recipe(edit_output(tmp_path / "out", "p000")).models["generator"]["threads"] == 2


def _listener(answer: bytes | None):
    """A TCP port that accepts connections and then says `answer` (None: nothing at all)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.recv(1024)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return server, f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("answer, why", [(None, "no answer in 5 s"),
                                         (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not as a Ray cluster does")])
def test_an_address_that_accepts_but_is_not_ray_fails_within_the_check(answer, why):
    from editanything.engines.ray import REACH_TIMEOUT_S, check_reachable

    server, address = _listener(answer)
    try:
        for given in (address, f"ray://{address}"):
            start = time.monotonic()
            with pytest.raises(InvalidInputError, match=f"cannot reach the Ray cluster at {given} \\(.*{why}"):
                check_reachable(given)
            assert time.monotonic() - start < REACH_TIMEOUT_S + 2
    finally:
        server.close()


@pytest.mark.parametrize("address", ["http://127.0.0.1:8265", "https://head:8265", "s3://x", "head:port", "a:1/x"])
def test_an_address_ray_cannot_take_is_one_line(tmp_path, capsys, monkeypatch, address):
    photos = _copies(tmp_path / "photos", 1)
    assert main(["sketch", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray", "--ray-address", address]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"--ray-address {address!r}: expected HOST:PORT" in err
    assert "unexpected" not in err
    monkeypatch.setenv("RAY_ADDRESS", address)
    assert main(["sketch", str(photos), "-o", str(tmp_path / "out"), "--engine", "ray"]) == 2
    assert f"RAY_ADDRESS {address!r}: expected" in capsys.readouterr().err


@contextlib.contextmanager
def _other_ray(env: dict, version: str | None = None):
    """Another user's Ray head on this machine (`ray start --block`, in `env`, reporting Ray `version` when
    given); yields its port. Its temp folder (and address file) is its own, out of other tests' way."""
    import socket
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # short: Ray's socket paths live under it
    env["RAY_TMPDIR"] = str(temp)
    start = ("import sys, ray\n" + (f"ray.__version__ = {version!r}\n" if version else "") +
             "from ray.scripts.scripts import main\nsys.argv[0] = 'ray'\nmain()")
    other = subprocess.Popen([sys.executable, "-c", start, "start", "--head", f"--port={port}", "--num-cpus=1",
                              "--include-dashboard=false", "--disable-usage-stats", "--block"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        address_file = temp / "ray" / "ray_current_cluster"
        deadline = time.monotonic() + 120
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert address_file.exists(), "the other Ray did not start"
        yield port
    finally:
        os.killpg(other.pid, signal.SIGTERM)  # the group this test started: `ray start --block` and its children
        other.wait(60)
        shutil.rmtree(temp, ignore_errors=True)


_CONNECT = ("import sys, ray\nfrom editanything.engines.ray import RayEngine\n"
            "RayEngine(address=sys.argv[1] or None)._connect(ray)\n"
            "print(ray.get_runtime_context().gcs_address)\nray.shutdown()")
_CLI = "import sys; from editanything.cli import main; sys.exit(main(sys.argv[1:]))"


def test_without_an_address_a_run_starts_its_own_ray_and_never_joins_one_running(tmp_path):
    """Another user's Ray runs on the machine (its address file where Ray looks first), on another Ray
    version: a run with no --ray-address and no RAY_ADDRESS starts a private one; an explicit address
    joins that cluster, and refuses it in one line naming both versions."""
    import ray

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"  # else whether an explicit address may join hangs on ~/.ray/auth_token
    with _other_ray(env, version="2.0.1") as port:
        private = subprocess.run([sys.executable, "-c", _CONNECT, ""], env=env, capture_output=True, text=True,
                                 timeout=240)
        assert private.returncode == 0, private.stderr
        assert not private.stdout.split()[-1].endswith(f":{port}")
        joined = subprocess.run([sys.executable, "-c", _CLI, "sketch", str(DEMOS / "coffee.jpg"),
                                 "-o", str(tmp_path / "out"), "--engine", "ray", "--ray-address",
                                 f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=240)
        assert joined.returncode == 2, joined.stderr
        here = ".".join(map(str, sys.version_info[:3]))
        assert joined.stderr.splitlines() == [
            f"error: the Ray cluster at 127.0.0.1:{port} runs Ray 2.0.1 on Python {here}, this machine Ray "
            f"{ray.__version__} on Python {here}; the driver needs the cluster's versions (install them here, "
            "or start a cluster with these)"]


def test_a_cluster_that_wants_a_token_says_how_to_give_it_in_one_line(tmp_path):
    """Ray never sends a token to an address on its own; the refusal says how to (and that works)."""
    import uuid

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex}
    with _other_ray({**env, **token}) as port:
        env["RAY_AUTH_MODE"] = "disabled"
        refused = subprocess.run([sys.executable, "-c", _CLI, "sketch", str(DEMOS / "coffee.jpg"),
                                  "-o", str(tmp_path / "out"), "--engine", "ray", "--ray-address",
                                  f"127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=240)
        assert refused.returncode == 2, refused.stderr
        # (above it, Ray's C++ client logs each failed try to join as a warning line of its own)
        [line] = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert "unexpected" not in refused.stderr
        assert line.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port}")
        assert line.endswith("set RAY_AUTH_MODE=token and give its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)")
        joined = subprocess.run([sys.executable, "-c", _CONNECT, f"127.0.0.1:{port}"], env={**env, **token},
                                capture_output=True, text=True, timeout=240)
        assert joined.returncode == 0 and joined.stdout.split()[-1].endswith(f":{port}"), joined.stderr


def test_ray_actors_lower_their_own_priority_as_the_local_pool_does(ray_local, tmp_path, monkeypatch):
    """Ray starts a worker's main thread at niceness 15 (its `worker_niceness`), its other threads at 0:
    an actor raises every thread to the niceness asked, never lowers one (0 leaves them as Ray made them)."""
    from niceness_work import write_niceness

    from editanything.batch import Job, run_batch
    from editanything.engines.priority import DEFAULT_NICE, ENV

    monkeypatch.delenv(ENV, raising=False)
    here = os.getpriority(os.PRIO_PROCESS, 0)
    for asked, expected in ((None, DEFAULT_NICE), (0, 0), (6, 6)):
        jobs = [Job(tmp_path / f"p{i}.txt", tmp_path / str(asked) / f"p{i}.txt") for i in range(4)]
        report = run_batch(jobs, write_niceness, engine="ray", nice=asked, progress=False)
        assert not report.failed, report.failed
        ran = [tuple(int(v) for v in job.output.read_text().split()) for job in jobs]
        assert all(pid != os.getpid() for pid, _, _ in ran)
        assert {least for _, _, least in ran} == {expected}  # the least nice thread of the actor's process
        assert all(nice >= expected for _, nice, _ in ran)  # the thread that ran the job
    assert os.getpriority(os.PRIO_PROCESS, 0) == here
