# The two entry points the README promises; both install first (the scripts are idempotent).
.PHONY: install browser demo test

install:
	bash scripts/install.sh

browser:
	bash scripts/install-browser.sh

demo: install
	.venv/bin/medagent demo --out medagent-demo

test: install browser
	bash scripts/test.sh
