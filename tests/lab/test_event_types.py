"""The sidebar's TypeScript event types are generated from the Python events (scripts/generate_event_types.py): the
committed file is what the generator writes now, so a renamed or retyped field breaks the extension's build."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "generate_event_types.py"


def generator():
    spec = importlib.util.spec_from_file_location("generate_event_types", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_typescript_event_types_are_what_the_python_events_generate():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_event_kind_is_in_the_union_with_its_fields_and_types():
    from jupyter_medagent.contracts.events import Finished, Usage, Verdict

    gen = generator()
    text = gen.render()
    kinds = {cls.__dataclass_fields__["kind"].default for cls in gen.event_classes()}
    assert {"plan", "cell_written", "cell_executed", "verdict", "finished"} <= kinds
    for kind in kinds:
        assert f"kind: '{kind}';" in text
    for cls in (Finished, Usage, Verdict):
        assert f"  | I{cls.__name__}Event" in text.split("export type AgentEvent =")[1]
    # Literals become string unions, optional Python values nullable, defaulted fields optional.
    assert "status: 'solved' | 'failed' | 'stopped';" in text
    assert "verdict: 'ok' | 'flag' | 'not_checked';" in text
    assert "confidence?: number | null;" in text
    assert "input_tokens: number;" in text and "total_tokens?: number;" in text


def test_a_field_the_generator_cannot_type_is_a_clear_error():
    gen = generator()
    with pytest.raises(TypeError, match="no TypeScript type for the annotation"):
        gen.ts_type(complex)
