"""The one vocabulary of metric keys: what the system prompt asks model backends to report, what the offline
recipes report, what the headline shows and what the bench's judges read (prompts/metric_keys.json)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def metric_keys() -> dict[str, dict[str, str]]:
    """{key: {"shape", "meaning"}}; a key with ``<structure>`` stands for one key per structure."""
    return json.loads(resources.files("jupyter_medagent.prompts").joinpath("metric_keys.json").read_text())


# Per-patient EF dictionaries that answer the user, first found wins (the network's answer first); the
# reference labels' EF of training patients is shown beside them but answers nothing.
EF_ANSWER_KEYS = ("ef_predicted", "ef_measured", "ef_percent")
EF_KEYS = EF_ANSWER_KEYS + ("ef_reference",)


def is_metric_key(key: str) -> bool:
    """Whether ``key`` is in the vocabulary (``dice_lv`` matches ``dice_<structure>``)."""
    return any(re.fullmatch(re.sub(r"<\w+>", r"[a-z0-9_]+", re.escape(k).replace(r"\<", "<").replace(r"\>", ">")), key)
               for k in metric_keys())


def prompt_text() -> str:
    """The vocabulary as the system prompt lists it."""
    return "\n".join(f"   - {key}: {entry['shape']}, {entry['meaning']}" for key, entry in metric_keys().items())
