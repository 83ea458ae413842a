# The two entry points the README promises; both install first (the scripts are idempotent).
.PHONY: install sandbox browser demo test

install: sandbox
	bash scripts/install.sh

sandbox:
	bash scripts/install-sandbox.sh

browser:
	bash scripts/install-browser.sh

demo: install
	.venv/bin/medagent demo --out medagent-demo

test: install browser
	bash scripts/test.sh
