"""WebUI sampler names mapped to diffusers schedulers.

The mapping follows the table in diffusers' scheduler overview ("A1111/k-diffusion → Diffusers").
`DPM++ SDE Karras` maps to `DPMSolverSinglestepScheduler(use_karras_sigmas=True)` as that table
says: diffusers' closer `DPMSolverSDEScheduler` needs the extra `torchsde` package and its
Brownian-tree noise, while the single-step solver runs with diffusers alone and is deterministic
for a seed, which `replay` relies on.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..types import canonical_sampler as canonical_name

# name (one of types.SAMPLER_NAMES, in their order) -> (diffusers class, options passed over the model's own
# scheduler config)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "DPM++ SDE Karras": ("DPMSolverSinglestepScheduler",
                         {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    # Latent consistency: 4-8 steps at CFG 1-2 with LCM-LoRA, which the generator turns on for it (lcm.py).
    "LCM": ("LCMScheduler", {}),
}

# A model's scheduler config may carry a sigma schedule of its own; a WebUI name fixes it.
_SIGMA_OPTIONS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def scheduler_options(name: str) -> tuple[str, dict[str, Any]]:
    """The diffusers scheduler class name and the options a WebUI sampler name stands for."""
    cls_name, options = SAMPLERS[canonical_name(name)]
    return cls_name, dict(options)


def make_scheduler(name: str, base_config: Mapping[str, Any]):
    """A scheduler for the WebUI sampler `name`, built over a model's scheduler config (betas, offsets)."""
    import inspect

    import diffusers

    cls_name, options = scheduler_options(name)
    cls = getattr(diffusers, cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    for option in _SIGMA_OPTIONS:
        if option in accepted:
            options.setdefault(option, False)
    return cls.from_config(dict(base_config), **options)
