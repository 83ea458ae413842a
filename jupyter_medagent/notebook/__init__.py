"""The notebook the agent writes: a draft while it works, a refined, re-executed notebook at the end."""

from jupyter_medagent.notebook.draft import DraftCell, DraftNotebook
from jupyter_medagent.notebook.recorder import NotebookRecorder
from jupyter_medagent.notebook.refine import free_path, reexecute_notebook, refined_notebook, write_notebook

__all__ = ["DraftCell", "DraftNotebook", "NotebookRecorder", "free_path", "reexecute_notebook", "refined_notebook", "write_notebook"]
