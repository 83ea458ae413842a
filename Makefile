# The two entry points the README promises; both install first (scripts/install.sh is idempotent).
.PHONY: install demo test

install:
	bash scripts/install.sh

demo: install
	.venv/bin/medagent demo --out medagent-demo

test: install
	bash scripts/test.sh
