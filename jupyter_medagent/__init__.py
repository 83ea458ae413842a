"""jupyter_medagent: an agent that builds and verifies medical-image-analysis pipelines in Jupyter.

Entry points are imported lazily so ``import jupyter_medagent`` stays cheap
(the kernel, the server and the CLI each need a different slice of it).
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext jupyter_medagent`` registers the ``%%medagent`` cell magic."""
    from jupyter_medagent.magic import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points():
    return [{"module": "jupyter_medagent.server"}]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyter-medagent"}]


def __getattr__(name):
    if name == "view":  # ``from jupyter_medagent import view``, without importing ipyniivue up front
        from jupyter_medagent.viewer import view

        return view
    raise AttributeError(f"module 'jupyter_medagent' has no attribute {name!r}")
