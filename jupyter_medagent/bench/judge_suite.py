"""The judge suite: each judge looks at correct and deliberately broken image/label pairs, as delivered.

The quantitative judge runs its data-set checks (``check_dataset``: geometry, label fit, conventions,
label values, intensity scales) on each set; a VLM judge gets each pair's rendered montage (never voxels)
and the rubrics, without the quantitative findings. A broken pair flagged is a detection, a correct pair
flagged a false alarm. One row per judge and pair goes to results.jsonl as it is judged (resumable).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

from jupyter_medagent.bench.data import make_data
from jupyter_medagent.bench.suite import Suite

CONTEXT = ("An image and its reference label map exactly as they were delivered, before any analysis. "
           "Say whether the label map can be trusted for this image.")


def judge_rows(suite: Suite, out: Path, vlm_selectors: list[str], done: set[str],
               record: Callable[[dict[str, Any]], None]) -> None:
    from jupyter_medagent.backends import make_judges
    from jupyter_medagent.imaging import build_data_card, load_pair, render_montage
    from jupyter_medagent.judge.quantitative import check_dataset

    judges = {"quantitative": None, **{f"vlm:{selector}": make_judges(selector)[0] for selector in vlm_selectors}}
    for data in suite.sets:
        folder = Path(out) / "data" / data.folder_name
        truth = make_data(data.maker, data.params, folder)
        broken = {p["case"]: p["kind"] for p in truth["pitfalls"]}
        card = build_data_card(folder)
        flagged = {f.case for f in check_dataset(card) if f.severity != "info"}
        for case in card.readable:
            if case.label_path is None:
                continue
            base = {"kind": "judge", "suite": suite.name, "set": data.label, "case": case.case_id,
                    "broken": case.case_id in broken, "pitfall": broken.get(case.case_id)}
            for name, judge in judges.items():
                key = f"judge/{name}/{data.label}/{case.case_id}"
                if key in done:
                    continue
                started = time.monotonic()
                if judge is None:
                    verdict, tokens, cost = ("flag" if case.case_id in flagged else "ok"), 0, 0.0
                else:
                    image, label = load_pair(case)
                    png = render_montage(image, label, title=case.case_id).png
                    answer = judge.judge([png], [], CONTEXT)
                    verdict = answer.verdict
                    tokens, cost = answer.usage.input_tokens + answer.usage.output_tokens, answer.usage.cost_usd
                record({**base, "key": key, "judge": name, "flagged": verdict == "flag", "tokens": tokens,
                        "cost_usd": cost, "seconds": round(time.monotonic() - started, 2)})
