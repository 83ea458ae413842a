"""Safety: the gate model-written code passes before it runs, and quoting of text found in data."""

from jupyter_medagent.safety.policy import SAFETY_MODES, SafetyPolicy, check_code, safety_for
from jupyter_medagent.safety.quoting import quote_untrusted

__all__ = ["SAFETY_MODES", "SafetyPolicy", "check_code", "quote_untrusted", "safety_for"]
