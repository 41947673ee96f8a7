"""The WebUI `parameters` text back into fields, as its png-info does (prompt, negative prompt, `Key: value`)."""

from __future__ import annotations

import json
import re

# `Key: value,` where a value holding `,` `:` or a newline is JSON-quoted (recipe.webui_parameters writes them so)
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_parameters(text: str) -> dict[str, str]:
    """{"Prompt", "Negative prompt", "Steps", …, "Size-1", "Size-2"} from a `parameters` chunk."""
    lines = text.strip().split("\n")
    last = lines.pop() if lines else ""
    if len(_PARAM.findall(last)) < 3:  # no settings line: it was part of the prompt
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out = {"Prompt": "\n".join(prompt).strip(), "Negative prompt": "\n".join(negative).strip()}
    for key, value in _PARAM.findall(last):
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                pass
        size = _SIZE.match(value)
        if size:
            out[f"{key}-1"], out[f"{key}-2"] = size.group(1), size.group(2)
        else:
            out[key.strip()] = value
    return out
