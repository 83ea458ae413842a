"""Planning: the request's intent, the data's and the machine's fingerprints, and the recipe registry,
turned into one serialisable Plan (``make_plan``)."""

from jupyter_medagent.plan.compute import ComputeFingerprint, compute_fingerprint
from jupyter_medagent.plan.intent import Intent, parse_request
from jupyter_medagent.plan.make import make_plan
from jupyter_medagent.plan.plan import Plan, PlanFailed, Preferences, Step

__all__ = ["ComputeFingerprint", "Intent", "Plan", "PlanFailed", "Preferences", "Step", "compute_fingerprint",
           "make_plan", "parse_request"]
