# The two entry points the README promises; both install first (the scripts are idempotent).
.PHONY: install sandbox browser demo test

install: sandbox
	bash scripts/install.sh

sandbox:
	bash scripts/install-debian.sh bwrap bubblewrap "kernels will run behind the runtime guard only"

browser:
	bash scripts/install-debian.sh /usr/bin/chromium chromium "the browser tests will be skipped"

demo: install
	.venv/bin/medagent demo --out medagent-demo

test: install browser
	bash scripts/test.sh
