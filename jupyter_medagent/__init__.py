"""jupyter_medagent: an agent that builds and verifies medical-image-analysis pipelines in Jupyter.

Entry points are imported lazily so ``import jupyter_medagent`` stays cheap
(the kernel and the CLI each need a different slice of it).
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext jupyter_medagent`` registers the ``%%medagent`` cell magic."""
    from jupyter_medagent.magic import load_ipython_extension as load

    load(ipython)
