"""What every isolation test shares: the sandbox must be there in CI, and is skipped elsewhere without it."""

import os

import pytest

from jupyter_medagent.isolation import sandbox_problem


@pytest.fixture(scope="session")
def bwrap():
    problem = sandbox_problem()
    if problem:
        if os.environ.get("CI") == "true" or os.environ.get("MEDAGENT_REQUIRE_SANDBOX"):
            pytest.fail(f"the sandbox must be tested in CI: {problem}")
        pytest.skip(problem)
