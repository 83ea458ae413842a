from jupyter_medagent.agent.context import KEEP_VERBATIM, compact_history
from jupyter_medagent.agent.protocols import Observation, Step, ToolCall


def _step(i):
    code = f"# cell {i}\n" + "x = 1\n" * 200
    return Step(ToolCall("add_cell", {"source": code, "note": f"step {i}"}),
                Observation(f"cell c{i} ran in 1.0 s\n" + "loss 0.1\n" * 300, images=[b"\x89PNG" + b"0" * 50_000],
                            data={"metrics": {"dice_mean": 0.9}}))


def _size(steps):
    return sum(len(s.observation.text) + sum(map(len, s.observation.images)) + len(str(s.call.arguments)) for s in steps)


def test_view_stays_bounded_as_the_run_grows():
    sizes = [_size(compact_history([_step(i) for i in range(n)])) for n in (10, 40, 80)]
    recent_budget = KEEP_VERBATIM * _size([_step(0)])
    assert all(size < recent_budget + n * 200 for size, n in zip(sizes, (10, 40, 80)))
    assert sizes[2] - sizes[1] < 40 * 200  # 40 more steps add at most a short line each


def test_order_and_outcome_of_older_steps_survive():
    history = [_step(i) for i in range(20)]
    history[2] = Step(history[2].call, Observation("cell c2 FAILED in 0.1 s\nZeroDivisionError", is_error=True))
    view = compact_history(history)
    assert len(view) == 20 and view[-1] is history[-1]
    assert view[2].observation.is_error and "ERROR cell c2 FAILED" in view[2].observation.text
    assert view[0].observation.images == [] and "source" not in view[0].call.arguments
    assert view[0].call.arguments["note"] == "step 0"
    assert "show_cell" in view[0].call.arguments["source_elided"]  # the call says its source was elided


def test_every_result_of_the_latest_reply_reaches_the_model_whole():
    """A reply that made 14 calls sees all 14 results next turn, not only the last KEEP_VERBATIM of them."""
    earlier = [Step(s.call, s.observation, turn=1) for s in map(_step, range(10))]
    latest = [Step(s.call, s.observation, turn=2) for s in map(_step, range(10, 24))]
    view = compact_history(earlier + latest)
    assert [s.observation for s in view[10:]] == [s.observation for s in latest]
    assert all(s.observation.text.startswith("[elided]") for s in view[:10])
    assert len(latest) > KEEP_VERBATIM


def test_elided_steps_say_so_and_where_the_current_cells_are():
    recipe = Step(ToolCall("propose_recipe", {}), Observation("Steps, in order:\n" + "1. [cell] setup\n" * 50))
    titled = Step(ToolCall("render", {"image": "image", "title": "Patient 12 at end-systole, after the label fix"}),
                  Observation("cell c9 ran in 1.0 s; 1 image(s) rendered", images=[b"\x89PNG"],
                              data={"cell_id": "c9"}))
    view = compact_history([_step(1), recipe, titled] + [_step(i) for i in range(10)])
    first = view[0].observation.text
    assert first.startswith("[elided] cell c1 ran in 1.0 s") and "show_cell('c1')" in first and "read_output('c1')" in first
    assert view[1].observation.text == recipe.observation.text  # the advice stays whole
    assert view[2].call.arguments["title"] == titled.call.arguments["title"]  # arguments are not cut
    assert "show_cell('c9')" in view[2].observation.text and view[2].observation.images == []


def test_a_long_first_line_is_cut_at_a_word_and_marked():
    from jupyter_medagent.agent.context import shorten

    assert shorten("calibrate the scanner intensities", 20) == "calibrate the…"
    assert shorten("short", 20) == "short"
