import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import bad_images as bad
from conftest import DEMOS
from editanything import imageio
from editanything.batch import collect_inputs, plan_jobs, sketch_folder
from editanything.cli import main
from editanything.errors import InvalidInputError


@pytest.fixture
def photo_folder(tmp_path):
    """demos/ photos in a nested folder, plus two corrupt files."""
    src = tmp_path / "photos"
    (src / "trip").mkdir(parents=True)
    shutil.copy(DEMOS / "coffee.jpg", src / "coffee.jpg")
    shutil.copy(DEMOS / "chelsea.jpg", src / "trip" / "chelsea.jpg")
    shutil.copy(DEMOS / "rocket.jpg", src / "trip" / "rocket.jpg")
    bad.truncated_jpeg(src / "broken.jpg")
    bad.text_as_jpeg(src / "trip" / "notes.jpg")
    return src


def _cli(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "editanything", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_batch_keeps_going_past_bad_files_and_resumes(photo_folder, tmp_path):
    out = tmp_path / "out"
    report = sketch_folder(photo_folder, out, workers=2, progress=False)
    assert sorted(p.name for p in report.done) == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert sorted(p.name for p, _ in report.failed) == ["broken.jpg", "notes.jpg"]
    reasons = dict((p.name, r) for p, r in report.failed)
    assert "truncated" in reasons["broken.jpg"] and "not an image" in reasons["notes.jpg"]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["coffee.png", "trip/chelsea.png", "trip/rocket.png"]  # nothing for the bad files
    sketchy = imageio.read_image(out / "coffee.png", gray=True)
    assert sketchy.shape == (400, 600)

    again = sketch_folder(photo_folder, out, workers=2, progress=False)
    assert sorted(p.name for p in again.skipped) == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert not again.done and len(again.failed) == 2


def test_cli_reports_one_line_per_bad_file_and_exits_nonzero(photo_folder, tmp_path):
    result = _cli("sketch", photo_folder, "-o", tmp_path / "out", "--workers", "2", "-q")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2
    assert any("broken.jpg" in line and "truncated" in line for line in failed)
    assert any("notes.jpg" in line and "not an image" in line for line in failed)
    assert "3 done" in result.stdout


def test_cli_usage_errors_are_one_line(tmp_path):
    result = _cli("sketch", DEMOS / "coffee.jpg", "-o", tmp_path, "--param", "nonsense=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "nonsense" in result.stderr


def test_glob_and_files_keep_names(tmp_path):
    pairs, missing = collect_inputs([str(DEMOS / "c*.jpg"), DEMOS / "rocket.jpg", tmp_path / "nope.jpg"])
    assert sorted(rel.as_posix() for _, rel in pairs) == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert [(p.name, why) for p, why in missing] == [("nope.jpg", "no such file or folder")]


def test_never_writes_over_an_input(tmp_path):
    src = tmp_path / "pic.png"
    Image.open(DEMOS / "coffee.jpg").save(src)
    before = src.read_bytes()
    report = sketch_folder([src], tmp_path, workers=1, progress=False)
    assert report.failed and "overwrite an input" in report.failed[0][1]
    assert src.read_bytes() == before


def test_unknown_param_and_style_fail_before_work(tmp_path):
    with pytest.raises(InvalidInputError):
        sketch_folder([DEMOS], tmp_path, style="watercolour", progress=False)
    with pytest.raises(InvalidInputError, match="no parameter"):
        sketch_folder([DEMOS], tmp_path, params={"nonsense": 1}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_max_side_shrinks(tmp_path):
    sketch_folder([DEMOS / "coffee.jpg"], tmp_path, max_side=300, workers=1, progress=False)
    assert Image.open(tmp_path / "coffee.png").size == (300, 200)


def test_interrupted_write_leaves_no_output(tmp_path, monkeypatch):
    def killed(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(imageio.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        imageio.write_image(tmp_path / "out.png", np.zeros((64, 64, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_killed_run_leaves_only_complete_outputs_and_resumes(tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(150):
        shutil.copy(DEMOS / ("coffee.jpg", "chelsea.jpg", "rocket.jpg")[i % 3], src / f"p{i:03d}.jpg")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "editanything", "sketch", str(src), "-o", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 5:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = list(out.glob("*.png"))
    assert 5 <= len(finished) < 150, "the run should be killed midway"
    for path in finished:  # every file at its final name is a whole image (a truncated one raises)
        assert imageio.read_image(path, gray=True).size > 0
    result = _cli("sketch", src, "-o", out, "--workers", "1", "-q")
    assert result.returncode == 0, result.stderr
    assert f"{len(finished)} skipped" in result.stdout
    assert len(list(out.glob("*.png"))) == 150
    assert not [p for p in out.iterdir() if p.name.endswith(imageio.PARTIAL_SUFFIX)]


def test_an_output_never_lands_on_another_input(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / "cat.jpg")
    Image.open(DEMOS / "chelsea.jpg").save(photos / "cat.png")
    before = (photos / "cat.png").read_bytes()
    report = sketch_folder([photos / "cat.jpg", photos / "cat.png"], photos, overwrite=True, workers=1,
                           progress=False)
    assert (photos / "cat.png").read_bytes() == before
    assert len(report.failed) == 2 and all("overwrite an input" in why for _, why in report.failed)


def test_an_output_folder_that_is_an_input_folder_is_refused_once_up_front(tmp_path, capsys):
    """Else the first run writes its outputs among the photos, and every re-run fails each file."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / "cat.jpg")
    for given in (photos, photos.as_uri(), tmp_path / "photos" / ".." / "photos"):
        assert main(["sketch", str(given), "-o", str(photos), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [f"error: the output folder {photos} is also an input folder ({given}): outputs "
                                    "would mix with the photos; choose another output folder (a subfolder of it works)"]
    assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg"]
    assert main(["sketch", str(photos), "-o", str(photos / "sketches"), "-q"]) == 0  # a subfolder works


def test_a_dead_writers_temp_file_is_removed_a_live_ones_kept(tmp_path):
    from editanything.batch import remove_partials

    dead = tmp_path / f".out.png.{2**22 + 12345}.abcd{imageio.PARTIAL_SUFFIX}"
    live = tmp_path / f".out.png.{os.getpid()}.efgh{imageio.PARTIAL_SUFFIX}"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    assert remove_partials([tmp_path / "out.png"]) == 1
    assert not dead.exists() and live.exists()


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / "coffee.jpg")
    shutil.copy(DEMOS / "chelsea.jpg", photos / "chelsea.jpg")
    out = photos / "sketches"
    first = sketch_folder([photos], out, workers=1, progress=False)
    assert len(first.done) == 2 and first.ok
    again = sketch_folder([photos], out, workers=1, progress=False)
    assert again.ok and not again.done and len(again.skipped) == 2
    assert not (out / "sketches").exists()
    # a glob over the input folder leaves the output folder out too
    pattern = sketch_folder([str(photos / "**" / "*.png")], out, fmt="png", workers=1, progress=False)
    assert not pattern.done and not pattern.failed


def test_every_file_a_job_writes_is_reserved_and_a_clash_names_both_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "a-1.jpg", "b.jpg"):
        shutil.copy(DEMOS / "coffee.jpg", photos / name)
    jobs, problems = plan_jobs([photos], tmp_path / "out", "png", count=2)
    assert [j.source.name for j in jobs] == ["b.jpg"]
    assert [o.name for o in jobs[0].outputs] == ["b.png", "b-1.png"]
    why = {p.name: r for p, r in problems}
    assert set(why) == {"a.jpg", "a-1.jpg"}
    assert "a-1.png" in why["a.jpg"] and str(photos / "a-1.jpg") in why["a.jpg"]
    assert "a-1.png" in why["a-1.jpg"] and str(photos / "a.jpg") in why["a-1.jpg"]
    # a numbered output that would land on an input is refused too
    shutil.copy(DEMOS / "coffee.jpg", photos / "b-1.png")
    jobs, problems = plan_jobs([photos / "b.jpg", photos / "b-1.png"], photos, "png", count=2)
    assert not jobs
    assert any(p.name == "b.jpg" and "b-1.png would overwrite an input" in r for p, r in problems)


def test_an_output_that_is_a_symlink_to_an_input_or_reached_through_a_linked_folder_is_caught(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir(), out.mkdir()
    for name in ("a.png", "b.jpg", "c.jpg"):
        shutil.copy(DEMOS / "coffee.jpg", photos / name)
    (out / "b.png").symlink_to(photos / "a.png")  # writing b's sketch would overwrite the photo a.png
    jobs, problems = plan_jobs([photos / "b.jpg", photos / "c.jpg", photos / "a.png"], out, "png")
    assert [j.source.name for j in jobs] == ["c.jpg", "a.png"]
    assert [(p.name, "would overwrite an input" in r) for p, r in problems] == [("b.jpg", True)]
    # out/x is a link to out/y: x/d.jpg's and y/d.jpg's sketches are one file, so both jobs are refused
    nested, out2 = tmp_path / "nested", tmp_path / "out2"
    for sub in ("x", "y"):
        (nested / sub).mkdir(parents=True)
        shutil.copy(DEMOS / "coffee.jpg", nested / sub / "d.jpg")
    assert len(plan_jobs([nested], out2, "png")[0]) == 2
    (out2 / "y").mkdir(parents=True)
    (out2 / "x").symlink_to(out2 / "y", target_is_directory=True)
    jobs, problems = plan_jobs([nested], out2, "png")
    assert not jobs
    assert sorted(p.parent.name for p, r in problems if "would also be written" in r) == ["x", "y"]


def test_two_inputs_with_one_output_are_both_refused_up_front(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / "cat.jpg")
    Image.open(DEMOS / "chelsea.jpg").save(photos / "cat.png")
    report = sketch_folder([photos], tmp_path / "out", workers=1, progress=False)
    assert not report.done and not (tmp_path / "out" / "cat.png").exists()
    why = {p.name: r for p, r in report.failed}
    assert str(photos / "cat.png") in why["cat.jpg"] and str(photos / "cat.jpg") in why["cat.png"]


def test_long_names_fit_the_file_system(tmp_path):
    name = "x" * 250  # a legal name: 254 bytes with .jpg
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMOS / "coffee.jpg", photos / f"{name}.jpg")
    report = sketch_folder([photos], tmp_path / "out", workers=1, progress=False)
    assert report.ok and (tmp_path / "out" / f"{name}.png").exists()
    longest = "y" * 251  # name.png fits, name-1.png does not: refused before any work
    shutil.copy(DEMOS / "coffee.jpg", photos / f"{longest}.jpg")
    jobs, problems = plan_jobs([photos / f"{longest}.jpg"], tmp_path / "out", "png", count=2)
    assert not jobs and "longer than 255 bytes" in problems[0][1]


def test_a_failure_line_names_the_file_once(photo_folder, tmp_path):
    report = sketch_folder(photo_folder, tmp_path / "out", workers=1, progress=False)
    lines = report.failure_lines()
    assert len(lines) == 2
    for (path, _), line in zip(report.failed, lines):
        assert line.startswith(f"{path}: ") and line.count(str(path)) == 1
    result = _cli("sketch", photo_folder / "broken.jpg", "-o", tmp_path / "cli", "-q")
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and failed[0].count("broken.jpg") == 1


def test_symlink_loops_are_reported(tmp_path):
    photos = tmp_path / "photos"
    (photos / "inner").mkdir(parents=True)
    shutil.copy(DEMOS / "coffee.jpg", photos / "inner" / "coffee.jpg")
    (photos / "inner" / "back").symlink_to(photos, target_is_directory=True)
    (photos / "self.jpg").symlink_to(photos / "self.jpg")
    report = sketch_folder([photos], tmp_path / "out", workers=1, progress=False)
    assert [p.name for p in report.done] == ["coffee.jpg"]
    why = {p.name: r for p, r in report.failed}
    assert set(why) == {"back", "self.jpg"}
    assert all("symlink loop" in r for r in why.values())
    pairs, problems = collect_inputs([photos / "self.jpg"])
    assert not pairs and "symlink loop" in problems[0][1]


def test_a_file_that_kills_its_worker_fails_alone_and_the_pool_goes_on(tmp_path):
    from crashing_work import CRASH_ON, copy_or_die

    from editanything.batch import Job, run_batch

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    jobs = []
    for i in range(20):
        (src / f"p{i:02d}.txt").write_text(f"file {i}")
        jobs.append(Job(src / f"p{i:02d}.txt", out / f"p{i:02d}.txt"))
    report = run_batch(jobs, copy_or_die, workers=2, progress=False)
    assert [(p.name, "died" in why) for p, why in report.failed] == [(CRASH_ON, True)]
    assert sorted(p.name for p in report.done) == sorted(j.source.name for j in jobs if j.source.name != CRASH_ON)
    for job in jobs:
        assert job.output.exists() == (job.source.name != CRASH_ON)
        if job.output.exists():
            assert job.output.read_bytes() == job.source.read_bytes()


def test_an_edit_batch_checks_each_output_against_its_own_input_only(tmp_path, monkeypatch):
    """The planner reserved every output, so a write checks one input, not all of them (N² checks)."""
    from editanything import batch
    from editanything.generate import GenerationParams
    from editanything.pipeline import EditRequest
    from editanything.types import Prompt

    checks = []
    real = imageio.same_file
    monkeypatch.setattr(imageio, "same_file", lambda a, b: checks.append(b) or real(a, b))
    request = EditRequest(mode="remove", selection=Prompt(boxes=[(10, 8, 52, 40)]),
                          params=GenerationParams(batch_size=2, batch_count=2))
    editor = {"segmenter": "grabcut", "generator": "classical", "detector": None}
    for n in (3, 9):
        photos = tmp_path / f"photos{n}"
        photos.mkdir()
        for i in range(n):
            scene = np.full((48, 64, 3), 240, np.uint8)
            scene[14:34, 18 + i % 3:44, 0] = 30  # a dark-red block inside the box
            Image.fromarray(scene).save(photos / f"p{i}.png")
        checks.clear()
        report = batch.edit_folder([photos], tmp_path / f"out{n}", request, editor=editor, progress=False)
        assert len(report.done) == n and not report.failed
        assert len(list((tmp_path / f"out{n}").glob("*.png"))) == 4 * n
        assert sorted(checks) == sorted(photos / f"p{i}.png" for i in range(n) for _ in range(4))


def test_when_every_file_kills_its_worker_the_pool_stops_restarting(tmp_path):
    from crashing_work import always_die

    from editanything.batch import Job, run_batch
    from editanything.engines.local import GIVE_UP

    jobs = [Job(tmp_path / f"p{i:02d}.txt", tmp_path / "out" / f"p{i:02d}.txt") for i in range(20)]
    report = run_batch(jobs, always_die, workers=2, progress=False)
    reasons = [why for _, why in report.failed]
    assert len(reasons) == 20 and not report.done
    assert sum("died on this file twice" in r for r in reasons) == GIVE_UP
    assert sum(r.startswith("not run: worker processes died") for r in reasons) == 20 - GIVE_UP


def _niceness_run(tmp_path, name, **options):
    """Four jobs that each write (pid, its thread's niceness, its process's least) where they ran."""
    from niceness_work import write_niceness

    from editanything.batch import Job, run_batch

    jobs = [Job(tmp_path / f"p{i}.txt", tmp_path / name / f"p{i}.txt") for i in range(4)]
    report = run_batch(jobs, write_niceness, progress=False, **options)
    assert not report.failed, report.failed
    return [tuple(int(v) for v in job.output.read_text().split()) for job in jobs]


@pytest.mark.parametrize("asked, env, expected", [(None, None, 10), (0, "7", 0), (None, "5", 5), (3, "12", 3)])
def test_batch_workers_lower_their_own_priority_as_asked_and_this_process_keeps_its_own(
        tmp_path, monkeypatch, asked, env, expected):
    from editanything.engines.priority import ENV

    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    here = os.getpriority(os.PRIO_PROCESS, 0)
    ran = _niceness_run(tmp_path, "pool", workers=2, nice=asked)
    assert all(pid != os.getpid() for pid, _, _ in ran)
    # every thread of a worker, not only the one that ran the job: the threads torch starts inherit it
    assert {(nice, least) for _, nice, least in ran} == {(max(expected, here),) * 2}
    assert os.getpriority(os.PRIO_PROCESS, 0) == here
    # one worker runs the jobs in this process (a UI's batch): its priority is not the batch's to lower
    ran = _niceness_run(tmp_path, "here", workers=1, nice=asked)
    assert {(pid, nice) for pid, nice, _ in ran} == {(os.getpid(), here)}
    assert os.getpriority(os.PRIO_PROCESS, 0) == here


def test_a_worker_never_raises_its_priority():
    """A batch started under `nice -n 12` asked for 3 stays at 12 (lowering niceness needs privileges)."""
    code = ("import os; os.nice(12)\n"
            "from editanything.engines.priority import lower_priority\n"
            "print(lower_priority(3), lower_priority(15), os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["12", "15", "15"]


def test_a_bad_niceness_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    from editanything.engines.priority import ENV

    (tmp_path / "in").mkdir()
    shutil.copy(DEMOS / "coffee.jpg", tmp_path / "in")
    monkeypatch.delenv(ENV, raising=False)
    for value in ("-1", "20"):
        assert main(["sketch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--nice", value]) == 2
        assert "error: --nice: the niceness of batch workers is a whole number from 0" in capsys.readouterr().err
    for value in ("-1", "20", "ten", "2.5"):
        monkeypatch.setenv(ENV, value)
        assert main(["sketch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {ENV}={value!r}: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv(ENV, "0")
    assert main(["sketch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", "--nice", "4"]) == 0


def test_an_edit_batch_in_niced_workers_replays_bit_exactly_in_this_process(tmp_path, monkeypatch, capsys):
    from editanything.batch import edit_folder
    from editanything.engines.priority import ENV
    from editanything.pipeline import EditRequest
    from editanything.types import Prompt

    monkeypatch.delenv(ENV, raising=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee.jpg", "chelsea.jpg"):
        shutil.copy(DEMOS / name, photos / name)
    request = EditRequest(mode="remove", selection=Prompt(boxes=[(120, 60, 300, 240)]))
    editor = {"segmenter": "grabcut", "generator": "classical", "detector": None}
    report = edit_folder([photos], tmp_path / "out", request, editor=editor, workers=2, progress=False)
    assert sorted(p.name for p in report.done) == ["chelsea.jpg", "coffee.jpg"] and not report.failed
    for result in sorted((tmp_path / "out").glob("*.png")):
        again = tmp_path / f"again-{result.name}"
        assert main(["replay", str(result), "-o", str(again)]) == 0
        assert "identical to the original" in capsys.readouterr().out
        assert np.array_equal(imageio.read_image(result), imageio.read_image(again))
