import sys

from jupyter_medagent.cli import main

sys.exit(main())
