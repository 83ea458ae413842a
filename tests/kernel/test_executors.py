"""Both executors give the same result type and the same outputs for the same code."""

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_medagent.kernel import InProcessExecutor, KernelClientExecutor

CODE = """
print("hello")
from IPython.display import display
display({"text/plain": "shown"}, raw=True)
value = 6 * 7
value
"""


def _shape(result):
    return [(o["output_type"], o.get("name"), o.get("text") or o.get("data", {}).get("text/plain")) for o in result.outputs]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    ex = KernelClientExecutor(cwd=tmp_path_factory.mktemp("kernel"))
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def inprocess():
    return InProcessExecutor(InteractiveShell.instance())


def test_same_outputs_from_both_executors(kernel, inprocess):
    expected = [("stream", "stdout", "hello\n"), ("display_data", None, "shown"), ("execute_result", None, "42")]
    assert _shape(kernel.execute(CODE)) == expected
    assert _shape(inprocess.execute(CODE)) == expected


def test_errors_without_ansi_codes(kernel, inprocess):
    for ex in (kernel, inprocess):
        result = ex.execute("def f():\n    return undefined_name\nf()")
        assert not result.ok and result.error["ename"] == "NameError"
        assert "undefined_name" in result.error["evalue"]
        assert all("\x1b[" not in line for line in result.error["traceback"])
        assert result.outputs[-1]["output_type"] == "error"


def test_variables_persist_in_the_users_namespace(kernel, inprocess):
    kernel.execute("counter = 1")
    assert kernel.execute("counter += 1\ncounter").outputs[-1]["data"]["text/plain"] == "2"
    inprocess.execute("shared = [1, 2]")
    assert inprocess.shell.user_ns["shared"] == [1, 2]


def test_syntax_error_in_process(inprocess):
    result = inprocess.execute("def broken(:")
    assert result.error["ename"] == "SyntaxError"


def test_timeout_interrupts(kernel):
    result = kernel.execute("import time\ntime.sleep(30)", timeout=1.0)
    assert result.error["ename"] == "TimeoutError" and result.duration_s < 10
    assert kernel.execute("1 + 1").outputs[-1]["data"]["text/plain"] == "2"  # the kernel survived


def test_unreachable_kernel_is_a_clear_error(tmp_path):
    import json

    from jupyter_medagent.contracts.errors import MedagentError

    connection = tmp_path / "kernel-gone.json"
    connection.write_text(json.dumps({"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
                                      "ip": "127.0.0.1", "key": "x", "transport": "tcp", "signature_scheme": "hmac-sha256"}))
    with pytest.raises(MedagentError, match="did not answer within 2 s"):
        KernelClientExecutor(connection_file=str(connection), startup_timeout=2)
