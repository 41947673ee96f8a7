"""Hosted generators: Stability AI's edit endpoints and OpenAI's image edits, behind the Generator protocol.

Only the crop around the mask leaves the machine (the whole photo with `--full-image`); the answer
is pasted back by compose.py, so pixels outside the grown mask stay bit-identical. Keys come from
environment variables only. See stability.py and openai.py for each service's request format and
where each fact was read.
"""

from __future__ import annotations

from .base import DryRun, RemoteGenerator
from .http import ContentRefused, QuotaExceeded, RetryPolicy
from .openai import OpenAIGenerator
from .stability import StabilityGenerator

REMOTE_GENERATORS = {"stability": StabilityGenerator, "openai": OpenAIGenerator}

__all__ = ["ContentRefused", "DryRun", "OpenAIGenerator", "QuotaExceeded", "REMOTE_GENERATORS", "RemoteGenerator",
           "RetryPolicy", "StabilityGenerator"]
