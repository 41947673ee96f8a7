"""The batch API from a plain script, as the README shows it: worker processes are spawned, and a
spawned worker imports the parent's main script again unless it needs nothing from it."""

import subprocess
import sys
import textwrap

from conftest import DEMOS, ROOT


def _run_script(tmp_path, body):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)


def test_an_unguarded_script_runs_a_parallel_batch(tmp_path):
    done = _run_script(tmp_path, f"""
        import editanything as ea

        report = ea.sketch_folder([{str(DEMOS / "coffee.jpg")!r}, {str(DEMOS / "chelsea.jpg")!r}], "out/",
                                  style="ink", workers=2, progress=False)
        print(report.summary(), report.failed)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 done, 0 skipped (already done), 0 failed []"), done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["chelsea.png", "coffee.png"]


def test_workers_that_die_while_starting_are_reported_as_that(tmp_path):
    # the work is defined in the script itself, so the workers must import it: unguarded, they die starting
    done = _run_script(tmp_path, f"""
        from pathlib import Path

        from editanything.batch import plan_jobs, run_batch

        def copy(source, output):
            output.write_bytes(source.read_bytes())

        jobs, _ = plan_jobs([{str(DEMOS / "coffee.jpg")!r}, {str(DEMOS / "chelsea.jpg")!r}], "out", "png")
        print(run_batch(jobs, copy, workers=2, progress=False).summary())
    """)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and not done.stdout
    assert last.startswith("editanything.errors.WorkerStartupError: the worker processes died while "
                           "starting, before any file"), done.stderr
    assert 'if __name__ == "__main__":' in last and "out of memory" not in done.stderr
