"""The progress channel: steps reach only the listener of the job that reported them; Cancel stops at a step."""

import threading

import pytest

from editanything.errors import Cancelled
from editanything.progress import CancelToken, Step, listening, report


def test_steps_reach_the_listener_of_their_own_thread_only():
    seen: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def job(name: str) -> None:
        with listening(lambda s: seen[name].append(s.step)):
            barrier.wait()
            for i in range(3):
                report(Step(0, 1, i + (10 if name == "b" else 0), 3))

    threads = [threading.Thread(target=job, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": [0, 1, 2], "b": [10, 11, 12]}
    report(Step(0, 1, 0, 1))  # nobody listening: a no-op


def test_a_cancel_token_stops_the_job_at_its_next_step():
    token = CancelToken()
    done = []
    with pytest.raises(Cancelled), listening(token.check):
        for i in range(5):
            report(Step(0, 1, i, 5))
            done.append(i)
            if i == 1:
                token.cancel()
    assert done == [0, 1]
