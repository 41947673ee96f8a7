"""The process's CPU thread policy: EDITANYTHING_THREADS, usable cores (affinity, cgroup quota), load,
the UI's split between selection and generation, and the threads a generation records."""

from __future__ import annotations

import os

import numpy as np
import pytest

from editanything import threads
from editanything.errors import InvalidInputError


@pytest.fixture
def undeclared():
    """Leave the process as it was: no roles sharing the cores, torch's count as before."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield
    threads.share_cores()
    torch.set_num_threads(before)


def test_env_var_sets_the_count_and_a_bad_value_is_one_line():
    assert threads.from_env({}) is None and threads.from_env({threads.ENV: " "}) is None
    assert threads.from_env({threads.ENV: "3"}) == 3
    assert threads.available({threads.ENV: "7"}, cores=2, busy=50.0) == 7  # asked for: load and cores do not matter
    for bad in ("0", "-2", "two", "1.5", "5000"):
        with pytest.raises(InvalidInputError, match=r"EDITANYTHING_THREADS=.* must be a whole number .* from 1 to"):
            threads.from_env({threads.ENV: bad})


def test_cgroup_quota_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    assert threads.cgroup_cpu_limit(v2) is None  # no file: no quota
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(v2) is None
    (v2 / "cpu.max").write_text("garbage\n")
    assert threads.cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(v1) is None


def test_usable_cores_follow_affinity_and_the_quota(tmp_path):
    affinity = os.sched_getaffinity(0)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: rounds up to one
    assert threads.usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cores(tmp_path) == len(affinity)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        assert threads.usable_cores(tmp_path) == 1
    finally:
        os.sched_setaffinity(0, affinity)


def test_load_takes_its_share_of_the_cores():
    machine = os.cpu_count()
    cores = max(machine, 4)  # the machine's size bounds what the load means; see available()
    assert threads.available({}, cores=cores, busy=0.0) == cores
    assert threads.available({}, cores=cores, busy=cores / 2) == cores // 2
    assert threads.available({}, cores=cores, busy=cores * 10.0) == 1  # never none
    assert 1 <= threads.available({}) <= threads.usable_cores()


def test_process_env_reaches_torch_before_it_loads():
    assert threads.process_env({threads.ENV: "3", "OMP_NUM_THREADS": "8"}) == {"OMP_NUM_THREADS": "3",
                                                                               "MKL_NUM_THREADS": "3"}
    assert threads.process_env({"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8"}) == {}  # the user's stand
    with pytest.raises(InvalidInputError):
        threads.process_env({threads.ENV: "x"})


def test_a_bad_env_var_is_one_line_from_the_cli(monkeypatch, capsys, tmp_path):
    from editanything.cli import main

    monkeypatch.setenv(threads.ENV, "lots")
    assert main(["sketch", str(tmp_path / "none.jpg"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: EDITANYTHING_THREADS='lots' must be a whole number of CPU threads from 1 to 1024; "
                   "unset it to let editanything choose from the free cores"]


def test_side_by_side_roles_split_the_threads(monkeypatch, undeclared):
    import torch

    monkeypatch.setenv(threads.ENV, "4")
    assert threads.threads_for("selection") == 4  # nothing declared: all of them
    threads.share_cores("selection", "generation", "sketch", interactive=("selection",))
    assert threads.threads_for("selection") == 4  # a click alone takes all
    assert threads.threads_for("generation") == 2  # the click's share is kept free
    start = torch.get_num_threads()
    with threads.using("generation") as gen:
        assert gen == 2 and torch.get_num_threads() == 2
        assert threads.threads_for("selection") == 2
        with threads.using("sketch") as sketch:  # in another thread in the UI; the count is the point here
            assert sketch == 1 and torch.get_num_threads() == 1
            assert threads.threads_for("selection") == 1
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == start
    assert threads.threads_for("selection") == 4
    with pytest.raises(ValueError):
        threads.share_cores("a", interactive=("b",))


def test_counts_are_per_thread_in_torch(monkeypatch, undeclared):
    """A selection handler and a generation handler run in two threads with their own counts at once."""
    import threading

    import torch

    monkeypatch.setenv(threads.ENV, "4")
    threads.share_cores("selection", "generation", interactive=("selection",))
    inside, seen, release = threading.Event(), [], threading.Event()

    def generation():
        with threads.using("generation"):
            inside.set()
            release.wait(30)
            seen.append(("generation", torch.get_num_threads()))

    worker = threading.Thread(target=generation)
    worker.start()
    assert inside.wait(30)
    with threads.using("selection") as count:
        seen.append(("selection", torch.get_num_threads()))
    release.set()
    worker.join(30)
    assert count == 2 and sorted(seen) == [("generation", 2), ("selection", 2)]


def test_ui_generation_records_the_threads_it_ran_with(monkeypatch, tmp_path, undeclared):
    """The UI's generation lock gives the edit its share; the recipe records it, so replay stays exact."""
    pytest.importorskip("diffusers")
    import tiny_sd
    import torch

    from editanything.generate import GenerationParams
    from editanything.generate.diffusion import DiffusionGenerator
    from editanything.pipeline import Editor, EditRequest
    from editanything.ui.locks import ModelLocks, share_cores

    monkeypatch.setenv(threads.ENV, "4")
    share_cores()
    editor = Editor(segmenter="grabcut", generator=DiffusionGenerator(tiny_sd.save_diffusers(tmp_path / "sd")))
    image, mask = tiny_sd.image_and_mask(64)
    params = GenerationParams(prompt="x", sampler="Euler a", steps=2, seed=5, resolution=64)
    torch.set_num_threads(1)
    with ModelLocks(editor).generating() as held:
        result = held.edit(image, EditRequest(mode="replace", mask=mask, params=params))
    assert result.recipe.models["generator"]["threads"] == 2  # 4 threads, half kept for clicks
    assert torch.get_num_threads() == 1  # restored
    assert not np.array_equal(result.images[0], image)


def test_the_http_api_splits_the_threads_as_the_ui_does(monkeypatch, undeclared):
    fastapi = pytest.importorskip("fastapi")
    from editanything.pipeline import Editor
    from editanything.server.app import add_api

    monkeypatch.setenv(threads.ENV, "4")
    assert threads.threads_for("generation") == 4
    add_api(fastapi.FastAPI(), Editor(segmenter="grabcut", generator="classical"))
    assert threads.threads_for("generation") == 2 and threads.threads_for("selection") == 4


def test_the_load_is_looked_at_once_a_second_not_per_click(monkeypatch):
    looks = []
    monkeypatch.setattr(threads, "busy_cores", lambda: looks.append(1) or 1.0)
    monkeypatch.setattr(threads, "_busy_seen", None)
    monkeypatch.delenv(threads.ENV, raising=False)
    clock = [100.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    for _ in range(5):
        threads.threads_for("selection")
    assert len(looks) == 1  # five clicks within the second: one look (~8 ms) instead of five
    clock[0] += threads.BUSY_MAX_AGE + 0.1
    threads.threads_for("selection")
    assert len(looks) == 2  # a batch that started meanwhile is seen


def test_current_count_without_torch(monkeypatch):
    """Where torch is not loaded (a batch worker drawing with ONNX Runtime), the count is the innermost `using`
    block's in this thread, else the pool slot's OMP_NUM_THREADS, else the policy's; and torch is not imported."""
    import sys
    import threading

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails: as an install without it
    monkeypatch.setenv("EDITANYTHING_THREADS", "4")
    assert threads.current({"OMP_NUM_THREADS": "3"}) == 3
    assert threads.current({"EDITANYTHING_THREADS": "4"}) == 4
    seen = {}
    with threads.using("sketch", threads=5):
        with threads.using("selection", threads=2):
            seen["inner"] = threads.current({"OMP_NUM_THREADS": "3"})
        seen["outer"] = threads.current({"OMP_NUM_THREADS": "3"})
        other = threading.Thread(target=lambda: seen.setdefault("other thread", threads.current({"OMP_NUM_THREADS": "3"})))
        other.start()
        other.join()
    assert seen == {"inner": 2, "outer": 5, "other thread": 3}
    assert threads.current({"OMP_NUM_THREADS": "3"}) == 3 and sys.modules["torch"] is None
