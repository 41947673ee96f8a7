"""WebUI sampler names → diffusers schedulers, checked against diffusers' own A1111 mapping table."""

import numpy as np
import pytest

from editanything.errors import InvalidInputError
from editanything.generate import WEBUI_DEFAULTS, ClassicalGenerator, GenerationParams, model_defaults
from editanything.generate.samplers import canonical_name, make_scheduler, sampler_names


@pytest.fixture(scope="module")
def diffusers():
    return pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def base(diffusers):
    """The model's own scheduler, as in stable-diffusion-inpainting's scheduler_config.json."""
    return diffusers.PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False).config


# From the table in diffusers' docs (api/schedulers/overview: "A1111/k-diffusion → Diffusers").
EXPECTED = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS": ("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "DDIM": ("DDIMScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler",
                 {"use_karras_sigmas": False, "algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler",
                        {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ SDE Karras": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {"use_karras_sigmas": False}),
    # not in that table: the WebUI's LCM sampler, diffusers' LCMScheduler (with LCM-LoRA, see test_lcm.py)
    "LCM": ("LCMScheduler", {}),
}


def test_every_webui_name_of_the_issue_is_offered():
    from editanything.generate.samplers import SAMPLERS
    from editanything.types import SAMPLER_NAMES

    assert set(sampler_names()) == set(EXPECTED)
    assert tuple(SAMPLERS) == SAMPLER_NAMES  # GenerationParams (types) accepts exactly the names mapped here


@pytest.mark.parametrize("name", list(EXPECTED))
def test_name_maps_to_the_documented_scheduler_and_options(name, diffusers, base):
    cls, options = EXPECTED[name]
    scheduler = make_scheduler(name, base)
    assert type(scheduler) is getattr(diffusers, cls)
    for key, value in options.items():
        assert scheduler.config[key] == value, key
    # the model's training schedule is kept
    assert scheduler.config.beta_start == 0.00085 and scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.num_train_timesteps == 1000
    scheduler.set_timesteps(10)
    assert len(scheduler.timesteps) >= 10


def test_karras_changes_the_noise_levels(base):
    plain, karras = make_scheduler("DPM++ 2M", base), make_scheduler("DPM++ 2M Karras", base)
    plain.set_timesteps(10)
    karras.set_timesteps(10)
    assert not np.array_equal(plain.timesteps.numpy(), karras.timesteps.numpy())


def test_name_fixes_the_sigma_schedule_even_over_a_karras_base_config(diffusers, base):
    karras = dict(diffusers.EulerDiscreteScheduler.from_config(base, use_karras_sigmas=True).config)
    assert make_scheduler("Euler", karras).config.use_karras_sigmas is False
    assert make_scheduler("DPM++ 2M Karras", karras).config.use_karras_sigmas is True


def test_sde_karras_needs_no_torchsde(base):
    scheduler = make_scheduler("DPM++ SDE Karras", base)
    scheduler.set_timesteps(5)
    assert "torchsde" not in type(scheduler).__module__


def test_names_match_ignoring_case_and_spaces():
    assert canonical_name("euler A") == "Euler a"
    assert canonical_name("  dpm++  2m   karras ") == "DPM++ 2M Karras"
    assert GenerationParams(sampler="ddim").sampler == "DDIM"


@pytest.mark.parametrize("bad", ["Heun", "", None, "DPM++"])
def test_unknown_names_list_the_valid_ones(bad, base):
    with pytest.raises(InvalidInputError) as err:
        make_scheduler(bad, base)
    assert "Euler a" in str(err.value) and "UniPC" in str(err.value)
    if bad is not None:  # None is "the model's default" (below)
        with pytest.raises(InvalidInputError):
            GenerationParams(sampler=bad)


def test_unset_sampler_steps_and_cfg_take_the_generators_defaults_else_the_webuis():
    class Distilled:
        def default_params(self):
            return {"sampler": "Euler", "steps": 4, "cfg_scale": 1.0}

    params = GenerationParams(prompt="a fox", steps=8)
    assert params.unset() == ["sampler", "cfg_scale"]
    own = params.with_defaults(model_defaults(Distilled()))
    assert (own.sampler, own.steps, own.cfg_scale, own.prompt) == ("Euler", 8, 1.0, "a fox")  # given steps kept
    webui = GenerationParams().with_defaults(model_defaults(ClassicalGenerator()))
    assert (webui.sampler, webui.steps, webui.cfg_scale) == ("DPM++ 2M Karras", 25, 7.0)
    assert webui.unset() == [] and webui.with_defaults({}) is webui
    with pytest.raises(InvalidInputError, match="steps"):  # a default is checked like a given value
        GenerationParams().with_defaults({**WEBUI_DEFAULTS, "steps": 0})
