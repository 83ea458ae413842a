"""The guard as defence in depth in a real kernel: a model cell can neither reach its state through the
frames it can see nor leave anything behind that runs unguarded in the user's later cells."""

from __future__ import annotations

import pytest

from jupyter_medagent.isolation import guard
from jupyter_medagent.kernel import KernelClientExecutor


@pytest.fixture()
def kernel(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    executor = KernelClientExecutor(cwd=out, guard=guard.policy([out]))
    yield executor, tmp_path / "outside.txt"
    executor.close()


def _text(result) -> str:
    return "".join(o.get("text", "") for o in result.outputs) + str(result.error or "")


def test_a_refusal_traceback_holds_no_guard_state_and_tampering_leaves_it_armed(kernel):
    executor, outside = kernel
    # Everything reachable from the refusal's frames: locals, globals, closures of what they hold.
    hunt = f"""
found = []
try:
    open({str(outside)!r}, 'w')
except PermissionError as exc:
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        for scope in (frame.f_locals, frame.f_globals):
            for value in list(scope.values()):
                cells = getattr(value, '__closure__', None) or ()
                defaults = getattr(value, '__defaults__', None) or ()
                for held in [value, *defaults, *[c.cell_contents for c in cells]]:
                    if isinstance(held, dict) and 'armed' in held:
                        held['armed'] = False
                        found.append(frame.f_code.co_name)
        tb = tb.tb_next
print('found', found)
open({str(outside)!r}, 'w').write('escaped')
"""
    result = executor.execute(hunt)
    assert "found []" in _text(result)
    assert "[medagent guard]" in result.error["evalue"] and not outside.exists()


def test_hooks_and_transformers_a_model_cell_plants_are_gone_after_it(kernel):
    executor, outside = kernel
    planted = f"""
import codeop, runpy, tempfile, os
ip = get_ipython()
source = "def later(*args):\\n    open({str(outside)!r}, 'a').write('hook ran')\\n"
namespace = {{}}
exec(codeop.compile_command(source, '<planted>', 'exec'), namespace)
ip.events.register('post_run_cell', namespace['later'])
ip.events.register('pre_run_cell', namespace['later'])
ip.input_transformers_post.append(lambda lines: lines + ["open({str(outside)!r}, 'a').write('transformer ran')\\n"])
ip.display_formatter.formatters['text/html'].for_type(int, lambda n: '<script>window.pwned=1</script>')
print('planted')
"""
    assert "planted" in _text(executor.execute(planted))
    # The user's next cells: none of it runs, and an int is no HTML.
    user = executor._run("x = 41 + 1\nx", timeout=30)
    assert not outside.exists(), outside.read_text()
    assert all("text/html" not in o.get("data", {}) for o in user.outputs)
    left = executor._run("ip = get_ipython()\nprint(len(ip.input_transformers_post), "
                         "[f.__name__ for f in ip.events.callbacks['post_run_cell']])", timeout=30)
    assert "later" not in _text(left)


def test_code_a_model_cell_runs_through_runpy_stays_guarded_when_called_later(kernel, tmp_path):
    executor, outside = kernel
    module = tmp_path / "out" / "helper_mod.py"
    cell = f"""
import runpy
open({str(module)!r}, 'w').write("def write():\\n    open({str(outside)!r}, 'w').write('x')\\n")
helpers = runpy.run_path({str(module)!r})
write_later = helpers['write']
import helper_mod
"""
    executor.execute(cell)
    user = executor._run("for f in (write_later, helper_mod.write):\n    try:\n        f()\n    except PermissionError:\n"
                         "        print('refused')", timeout=30)
    assert _text(user).count("refused") == 2 and not outside.exists()


def test_ordinary_user_cells_after_a_model_cell_still_plot_and_write(kernel, tmp_path):
    executor, _ = kernel
    executor.execute("import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])")
    user = executor._run("open('mine.txt', 'w').write('u')\nimport matplotlib.pyplot as plt\nplt.figure()\nprint('ok')",
                         timeout=60)
    assert "ok" in _text(user) and (tmp_path / "out" / "mine.txt").exists()


def test_callbacks_a_model_cell_queues_on_event_loops_do_not_run_unguarded_later(kernel):
    """Finding 4: code queued to run after the model cell (asyncio call_soon/call_later/call_at, a task,
    tornado's add_callback/call_later on the cells' loop and on another thread's, a threading.Timer) would run
    after the release with no model frame below it. It is taken back at the release, or stays guarded."""
    executor, outside = kernel
    escape = f"open({str(outside)!r}, 'a').write('{{}} ran\\n')"
    cell = f"""
import asyncio, functools, threading
from tornado.ioloop import IOLoop
loop = asyncio.get_event_loop()
def code(name):
    return {escape!r}.format(name)
loop.call_soon(functools.partial(exec, code('call_soon'), {{}}))
loop.call_later(0.5, exec, code('call_later'), {{}})
loop.call_at(loop.time() + 0.5, exec, code('call_at'), {{}})
asyncio.ensure_future(get_ipython().run_cell_async(code('task')))
IOLoop.current().add_callback(exec, code('add_callback'), {{}})
IOLoop.current().call_later(0.5, exec, code('tornado_call_later'), {{}})
other = next(l for a, l in IOLoop._ioloop_for_asyncio.items() if a is not loop)
other.call_later(0.5, exec, code('other_thread_loop'), {{}})
threading.Timer(0.5, exec, [code('timer'), {{}}]).start()
print('queued')
"""
    assert "queued" in _text(executor.execute(cell))
    user = executor._run("import time\ntime.sleep(2)\nprint('user cell done')", timeout=30)
    assert "user cell done" in _text(user)
    assert not outside.exists(), outside.read_text()
    assert "ok" in _text(executor._run("print('ok')", timeout=30))  # the kernel still answers
