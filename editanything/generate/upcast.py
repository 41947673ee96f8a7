"""Half-precision weight files on a CPU: weights kept in fp16, each layer upcast to fp32 as it runs.

The released SD 1.5 inpainting repository has fp16 files only, and a CPU computes in fp32. Upcasting
every weight at load doubles them in memory (the UNet: 1.7 GB on disk, 3.4 GB as fp32). Upcasting
fp16 to fp32 is exact, so keeping the file's fp16 tensors and upcasting each layer's just before it
runs computes with the very same fp32 weights: the pixels are bit-identical to upcasting at load, at
half the resident weights. Every Linear, Conv and Embedding gets a hook: its fp32 copy lives for its
own forward only, then the layer points at its fp16 tensors again (diffusers' own
layerwise casting casts them back down instead: a second cast, and a fresh copy of the weights beside
the mapped file's pages on the first step). The rest (norms: few weights) is upcast once at load. The
cost is one cast per layer per call, measured in benchmarks/pipeline_memory.py.

It is exact only because the files hold fp16: weights stored as fp32 are never stored narrower here.
"""

from __future__ import annotations

import re
from typing import Any

# Components of a Stable Diffusion pipeline whose weights can stay as their fp16 files hold them.
COMPONENTS = ("unet", "vae", "text_encoder")
# The text encoder's embeddings stay fp32: transformers reads a model's dtype from its first weight
# (the token embedding), and the pipeline casts the prompt embeddings to that dtype.
_KEEP_FULL = {"text_encoder": ("embeddings",)}
_HOOK = "layerwise_casting"  # diffusers' name: its models then report fp32 as their dtype (get_parameter_dtype)


def upcast_per_layer(module: Any, component: str) -> Any:
    """`module` (loaded in fp16) computing in fp32: hooked layers keep fp16 weights, the rest is upcast now."""
    import torch

    _hook_layers(module, _KEEP_FULL.get(component, ()), _hook_class(), "")
    for sub in module.modules():
        if is_upcast_per_layer(sub):
            continue
        for name, param in sub.named_parameters(recurse=False):
            if param.is_floating_point() and param.dtype != torch.float32:
                param.data = param.data.float()
        for name, buffer in sub.named_buffers(recurse=False):
            if buffer.is_floating_point() and buffer.dtype != torch.float32:
                sub._buffers[name] = buffer.float()
    return module


def _hook_layers(module: Any, skip: tuple[str, ...], hook_class: type, prefix: str) -> None:
    import torch
    from diffusers.hooks import HookRegistry

    if any(re.search(pattern, prefix) for pattern in skip):
        return
    if isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Embedding)):
        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook_class(), _HOOK)
        return
    for name, child in module.named_children():
        _hook_layers(child, skip, hook_class, f"{prefix}.{name}" if prefix else name)


def _hook_class() -> type:
    import torch
    from diffusers.hooks.layerwise_casting import LayerwiseCastingHook

    class KeepHalf(LayerwiseCastingHook):
        """A layer's fp16 weights upcast for its forward; the same fp16 tensors put back after it."""

        def __init__(self) -> None:
            super().__init__(torch.float16, torch.float32, non_blocking=False)
            self.half: dict[str, Any] = {}

        def initialize_hook(self, module: Any) -> Any:
            return module

        def pre_forward(self, module: Any, *args: Any, **kwargs: Any) -> tuple:
            # The layer's weights as they are now, not as they were when hooked: whatever changed or
            # replaced them since (a cast, an edit in place) is what runs.
            self.half = {}
            for name, param in module.named_parameters(recurse=False):
                if param.dtype == torch.float16:
                    self.half[name] = param.data
                    param.data = param.data.float()
            return args, kwargs

        def post_forward(self, module: Any, output: Any) -> Any:
            params = dict(module.named_parameters(recurse=False))
            for name, half in self.half.items():
                params[name].data = half
            self.half = {}
            return output

    return KeepHalf


def restore_half(module: Any) -> Any:
    """Put the hooked layers' weights of `module` back in fp16 after something cast it whole to fp32
    (diffusers' `from_pipe`, which adds a ControlNet, casts the pipeline to one dtype). Exact: their
    values came from fp16."""
    import torch

    for sub in module.modules():
        if is_upcast_per_layer(sub):
            for param in sub.parameters(recurse=False):
                if param.dtype == torch.float32:
                    param.data = param.data.half()
    return module


def is_upcast_per_layer(module: Any) -> bool:
    """Whether `module` itself carries the upcasting hook."""
    registry = getattr(module, "_diffusers_hook", None)
    return registry is not None and registry.get_hook(_HOOK) is not None


def stored_half(module: Any) -> bool:
    """Whether any layer of `module` keeps fp16 weights upcast as it runs."""
    return any(is_upcast_per_layer(sub) for sub in module.modules())
