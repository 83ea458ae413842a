"""MIME types of medagent's own outputs.

Cells report structured results through these types in their display data, so the loop reads findings and
metrics without parsing printed text; the magic's run output and the sidebar's timeline share RUN_MIME.
"""

MEDAGENT_PREFIX = "application/vnd.medagent."  # every type below starts so and ends in "+json"
FINDINGS_MIME = MEDAGENT_PREFIX + "findings+json"
METRICS_MIME = MEDAGENT_PREFIX + "metrics+json"
COMPUTE_MIME = MEDAGENT_PREFIX + "compute+json"  # the kernel's machine (plan.compute.ComputeFingerprint)
PROGRESS_MIME = MEDAGENT_PREFIX + "progress+json"  # a long loop's progress (pipelines/progress.py)
RUN_MIME = MEDAGENT_PREFIX + "run+json"  # a whole run, drawn as a timeline by the labextension (runoutput.ts)
