"""Backend configuration in one place: selectors, keys from the environment, an optional config file.

Selectors (CLI ``--backend``, the magic, the sidebar):

- ``offline`` or ``offline:steps=N,...``: the deterministic expert planner (the default; no network).
- ``anthropic:MODEL``: Claude; key from ``ANTHROPIC_API_KEY``.
- ``openai:MODEL`` or ``openai:MODEL@URL``: OpenAI, or any OpenAI-compatible server (vLLM, LM Studio,
  Ollama, llama.cpp); key from ``OPENAI_API_KEY`` (optional for a local URL).

The config file (``$MEDAGENT_CONFIG``, else ``~/.config/medagent/config.toml``) may set the default
``backend``, a ``vlm_judge`` selector, per-provider tables (``[anthropic]``/``[openai]``: ``api_key_env``,
``base_url``, ``max_tokens``, ``timeout``, ``max_retries``, and for openai ``tools``/``images``) and
``[prices."MODEL"]`` tables in USD per million tokens.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyter_medagent.agent.protocols import Backend, Judge
from jupyter_medagent.contracts.errors import ConfigError

DEFAULT_BACKEND = "offline"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
PROVIDER_OPTIONS = {"api_key_env", "base_url", "max_tokens", "timeout", "max_retries", "tools", "images"}


def config_path() -> Path:
    return Path(os.environ.get("MEDAGENT_CONFIG") or Path.home() / ".config" / "medagent" / "config.toml")


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        if os.environ.get("MEDAGENT_CONFIG"):
            raise ConfigError(f"MEDAGENT_CONFIG={path}: no such file")
        return {}
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML config file ({exc})") from exc
    for provider in ("anthropic", "openai"):
        unknown = set(config.get(provider, {})) - PROVIDER_OPTIONS
        if unknown:
            raise ConfigError(f"{path}: unknown option(s) {', '.join(sorted(unknown))} in [{provider}]; "
                              f"known: {', '.join(sorted(PROVIDER_OPTIONS))}")
    return config


def make_backend(selector: str | None = None, config: dict[str, Any] | None = None) -> Backend:
    config = load_config() if config is None else config
    selector = (selector or config.get("backend") or DEFAULT_BACKEND).strip()
    kind, _, rest = selector.partition(":")
    if kind == "offline":
        return _offline(selector, rest)
    if kind in ("anthropic", "openai"):
        return _model_client(kind, rest, selector, config)
    raise ConfigError(f"unknown backend {selector!r}; use offline, anthropic:MODEL or openai:MODEL[@URL]")


def make_judges(selector: str | None = None, config: dict[str, Any] | None = None) -> list[Judge]:
    """Extra judges beside the quantitative one: a VLM judge when a selector is given or configured."""
    config = load_config() if config is None else config
    selector = selector or config.get("vlm_judge")
    if not selector:
        return []
    from jupyter_medagent.judge.vlm import VLMJudge

    kind, _, rest = selector.partition(":")
    if kind not in ("anthropic", "openai"):
        raise ConfigError(f"the VLM judge needs a model backend (anthropic:MODEL or openai:MODEL[@URL]), not {selector!r}")
    return [VLMJudge(_model_client(kind, rest, selector, config))]


def _offline(selector: str, options: str) -> Backend:
    import dataclasses

    from jupyter_medagent.backends.offline import OfflineBackend
    from jupyter_medagent.plan import Preferences

    fields = {f.name: f.type for f in dataclasses.fields(Preferences)}  # annotations as text, e.g. "int | None"
    values = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise ConfigError(f"unknown offline backend option {key!r} in {selector!r}; known: {', '.join(fields)}")
        kind = int if fields[key].startswith("int") else float if fields[key].startswith("float") else str
        try:
            values[key] = kind(value)
        except ValueError:
            raise ConfigError(f"offline backend option {key}={value!r} in {selector!r} is not a {kind.__name__}") from None
    return OfflineBackend(Preferences(**values))


def _model_client(kind: str, rest: str, selector: str, config: dict[str, Any]):
    from jupyter_medagent.backends.pricing import PriceTable

    model, _, url = rest.partition("@")
    if not model:
        raise ConfigError(f"{selector!r} names no model; write {kind}:MODEL" + ("[@URL]" if kind == "openai" else ""))
    options = dict(config.get(kind, {}))
    key_env = options.pop("api_key_env", f"{kind.upper()}_API_KEY")
    base_url = url or options.pop("base_url", None) or os.environ.get(f"{kind.upper()}_BASE_URL")
    options.pop("base_url", None)
    if base_url and urlparse(base_url).scheme not in ("http", "https"):
        raise ConfigError(f"{selector!r}: {base_url!r} is not an http(s) URL")
    api_key = os.environ.get(key_env)
    prices = PriceTable.load(config.get("prices"))
    if kind == "anthropic":
        from jupyter_medagent.backends.anthropic_api import AnthropicBackend

        if not api_key:
            raise ConfigError(f"{selector}: no API key; set {key_env} (or api_key_env in {config_path()})")
        options.pop("tools", None), options.pop("images", None)
        return AnthropicBackend(model, api_key=api_key, base_url=base_url, prices=prices, **options)
    from jupyter_medagent.backends.openai_api import OPENAI_URL, OpenAIBackend

    base_url = base_url or OPENAI_URL
    if urlparse(base_url).hostname in LOCAL_HOSTS and prices.price(model) is None:
        prices.prices[model] = {"input": 0.0, "output": 0.0}  # served on this machine: no API money spent
    if not api_key and urlparse(base_url).hostname == urlparse(OPENAI_URL).hostname:
        raise ConfigError(f"{selector}: no API key for {base_url}; set {key_env} (or api_key_env in {config_path()})")
    # Local servers (llama.cpp, vLLM, Ollama) accept any key; the SDK insists on one.
    return OpenAIBackend(model, api_key=api_key or "not-needed", base_url=base_url, prices=prices, **options)


def backend_catalogue() -> dict[str, Any]:
    """What a front end can offer: the offline planner always, model backends with whether they can run here."""
    try:
        config = load_config()
    except ConfigError as exc:
        config, problem = {}, str(exc)
    else:
        problem = None
    entries = [{"selector": "offline", "label": "Offline expert planner (no model, no network)", "available": True,
                "reason": None}]
    chosen = config.get("backend")
    if chosen and not chosen.startswith("offline"):
        entries.append({"selector": chosen, "label": f"{chosen} (from the config file)", "available": True, "reason": None})
    for kind, example in (("anthropic", "anthropic:claude-sonnet-4-5"), ("openai", "openai:gpt-5")):
        key_env = config.get(kind, {}).get("api_key_env", f"{kind.upper()}_API_KEY")
        has_key = bool(os.environ.get(key_env))
        if example != chosen:
            entries.append({"selector": example, "label": example, "available": has_key,
                            "reason": None if has_key else f"set {key_env}"})
    return {"default": chosen or DEFAULT_BACKEND, "backends": entries, "config_problem": problem}
