"""The Editor refuses edits that would silently do nothing or go wrong."""

import numpy as np

from editanything.generate import GenerationParams
from editanything.pipeline import Editor, EditRequest
from editanything.types import Detections


def test_prompt_for_matches_whole_phrases():
    shape = (40, 60)
    dog, hot_dog = np.zeros(shape, bool), np.zeros(shape, bool)
    dog[5:15, 5:15] = True
    hot_dog[20:30, 30:50] = True
    found = Detections.from_masks(np.stack([dog, hot_dog]), [0.9, 0.8], ["dog", "hot dog"])
    params = GenerationParams(prompt="a bun")
    request = EditRequest(mask=dog | hot_dog, prompt_for={"Dog": "a corgi"}, params=params)
    steps = Editor()._instance_steps(found, dog | hot_dog, request, params)
    assert [p.prompt for _, p in steps] == ["a corgi", "a bun"]
    assert np.array_equal(steps[0][0], dog) and np.array_equal(steps[1][0], hot_dog)
