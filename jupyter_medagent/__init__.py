"""jupyter_medagent: an agent that builds and verifies medical-image-analysis pipelines in Jupyter."""

__version__ = "0.1.0"
