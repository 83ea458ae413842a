"""The benchmark's report, built from ``results.jsonl`` alone: ``report.md`` and ``report.html`` (the same
tables, plots embedded) with PNG plots in ``plots/``.

Agent runs: success per configuration (backend, and skills where several were run) x task x wording;
per configuration the success rate, wall time, steps, tokens (cache reads shown apart: Anthropic's prompt
caching), cost, and cost and tokens per solved task. Plots: success vs cost, success by wording, and how
the prompt grows step by step. Judge rows: sensitivity and false alarms per judge and per pitfall kind.
"""

from __future__ import annotations

import base64
import html
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from jupyter_medagent.bench.runner import read_results
from jupyter_medagent.bench.suite import WORDINGS
from jupyter_medagent.pipelines.report import markdown_table

Table = tuple[list[str], list[list[Any]]]  # header, rows


def configuration(row: dict[str, Any], several_skills: bool) -> str:
    return f"{row['backend']} (skills {row['skills']})" if several_skills else row["backend"]


def _money(value: float) -> str:
    return f"${value:.4f}" if value else "$0"


def agent_tables(rows: list[dict[str, Any]]) -> tuple[dict[str, Table], dict[str, list[dict]]]:
    several_skills = len({r["skills"] for r in rows}) > 1
    by_config: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_config[configuration(row, several_skills)].append(row)
    summary = []
    for name, mine in by_config.items():
        solved = [r for r in mine if r["solved"]]
        cost = sum(r["cost_usd"] for r in mine)
        tokens = sum(r["tokens"] for r in mine)
        summary.append([name, f"{len(solved)}/{len(mine)}", f"{len(solved) / len(mine):.0%}",
                        f"{statistics.mean(r['seconds'] for r in mine):.1f}", f"{statistics.mean(r['steps'] for r in mine):.1f}",
                        f"{tokens:,}", f"{sum(r['cache_read_tokens'] for r in mine):,}", _money(cost),
                        _money(cost / len(solved)) if solved else "-", f"{tokens // len(solved):,}" if solved else "-",
                        sum(r["crashed"] for r in mine)])
    header = ["configuration", "solved", "success", "mean s", "mean steps", "tokens", "cache reads", "cost",
              "cost / solved", "tokens / solved", "crashed"]
    tables = {"Per configuration": (header, summary)}
    wordings = [w for w in WORDINGS if any(r["wording"] == w for r in rows)]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for name, mine in by_config.items():
        cells = []
        for task in tasks:
            line = [task]
            for wording in wordings:
                runs = [r for r in mine if r["task"] == task and r["wording"] == wording]
                line.append(f"{sum(r['solved'] for r in runs)}/{len(runs)}" if runs else "")
            runs = [r for r in mine if r["task"] == task]
            line.append(f"{statistics.mean(r['seconds'] for r in runs):.0f}")
            cells.append(line)
        tables[f"Solved per task and wording: {name}"] = (["task", *wordings, "mean s"], cells)
    details = [[r["task"], r["wording"], configuration(r, several_skills), r["repeat"],
                "solved" if r["solved"] else "failed", r["steps"], f"{r['seconds']:.0f}", r["verdict"]] for r in rows]
    tables["Every run"] = (["task", "wording", "configuration", "repeat", "result", "steps", "s", "judge"], details)
    return tables, by_config


def judge_tables(rows: list[dict[str, Any]]) -> dict[str, Table]:
    by_judge: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_judge[row["judge"]].append(row)
    summary, kinds = [], []
    for judge, mine in by_judge.items():
        broken = [r for r in mine if r["broken"]]
        clean = [r for r in mine if not r["broken"]]
        caught = sum(r["flagged"] for r in broken)
        alarms = sum(r["flagged"] for r in clean)
        summary.append([judge, f"{caught}/{len(broken)}", f"{caught / len(broken):.0%}" if broken else "-",
                        f"{alarms}/{len(clean)}", f"{alarms / len(clean):.0%}" if clean else "-",
                        f"{sum(r['tokens'] for r in mine):,}", _money(sum(r["cost_usd"] for r in mine))])
        per_kind: dict[str, list[bool]] = defaultdict(list)
        for r in broken:
            per_kind[r["pitfall"]].append(r["flagged"])
        kinds += [[judge, kind, f"{sum(hits)}/{len(hits)}"] for kind, hits in sorted(per_kind.items())]
    return {"Judges on correct and broken pairs": (["judge", "broken pairs flagged", "sensitivity", "correct pairs flagged",
                                                    "false alarms", "tokens", "cost"], summary),
            "Detections per pitfall kind": (["judge", "pitfall", "flagged"], kinds)}


# ---------------------------------------------------------------------------------------------- plots
def plots(by_config: dict[str, list[dict]], folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    names = list(by_config)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        mine = by_config[name]
        rate = sum(r["solved"] for r in mine) / len(mine)
        cost = statistics.mean(r["cost_usd"] for r in mine)
        ax.scatter([cost], [rate * 100], s=60)
        ax.annotate(name, (cost, rate * 100), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("mean cost per run (USD)")
    ax.set_ylabel("runs solved (%)")
    ax.set_ylim(-5, 105)
    ax.set_title("Success vs cost")
    made["Success vs cost"] = _save(fig, folder / "success_vs_cost.png")

    wordings = [w for w in WORDINGS if any(r["wording"] == w for rows in by_config.values() for r in rows)]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        rates = []
        for wording in wordings:
            runs = [r for r in by_config[name] if r["wording"] == wording]
            rates.append(100 * sum(r["solved"] for r in runs) / len(runs) if runs else 0)
        ax.bar([w + i * width for w in range(len(wordings))], rates, width, label=name)
    ax.set_xticks([w + width * (len(names) - 1) / 2 for w in range(len(wordings))], wordings)
    ax.set_ylabel("runs solved (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    ax.set_title("Success by wording")
    made["Success by wording"] = _save(fig, folder / "success_by_wording.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for name in names:
        calls = [r["calls"] for r in by_config[name] if r.get("calls")]
        if not calls:
            continue
        longest = max(map(len, calls))
        means = [statistics.mean(c[i][0] + c[i][2] for c in calls if len(c) > i) for i in range(longest)]
        ax.plot(range(1, longest + 1), means, marker=".", label=name)
        drawn = True
    ax.set_xlabel("model call")
    ax.set_ylabel("prompt tokens (uncached + cache reads)")
    ax.set_title("Token growth per step" + ("" if drawn else " (no model calls: no configuration used tokens)"))
    if drawn:
        ax.legend(fontsize=7)
    made["Token growth per step"] = _save(fig, folder / "token_growth.png")
    return made


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------- writing
def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(out: Path, title: str = "medagent bench") -> tuple[Path, Path]:
    """report.md and report.html in ``out`` from its results.jsonl; returns their paths."""
    out = Path(out)
    rows = read_results(out)
    # A run made again (its task changed in the suite, or its data could not be made before) counts once: its
    # latest row.
    agent_rows = list({tuple(r.get(k) for k in ("suite", "task", "wording", "backend", "skills", "repeat")): r
                       for r in rows if r.get("kind", "agent") == "agent"}.values())
    judge_rows = [r for r in rows if r.get("kind") == "judge"]
    sections: list[tuple[str, Table]] = []
    figures: dict[str, Path] = {}
    if agent_rows:
        tables, by_config = agent_tables(agent_rows)
        sections += list(tables.items())
        figures = plots(by_config, out / "plots")
    if judge_rows:
        sections += list(judge_tables(judge_rows).items())
    intro = f"{len(agent_rows)} agent run(s), {len(judge_rows)} judge verdict(s), from {out / 'results.jsonl'}."
    if agent_rows:
        intro += (" A run counts as solved only when it claimed success, its notebook re-ran on its own and the "
                  "task's judge agreed with the truth.")
    if judge_rows:
        intro += " A judge's flag on a broken pair is a detection, on a correct pair a false alarm."
    md = [f"# {title}", "", intro, ""]
    page = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:.2em .5em;font-size:90%}img{max-width:100%}</style></head><body>",
            f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"]
    for name, (header, table) in sections:
        md += [f"## {name}", "", markdown_table(table, header), ""]
        table_html = _html_table(header, table) if table else "<p>(nothing to show)</p>"
        page.append(f"<h2>{html.escape(name)}</h2>" + table_html)
    for name, path in figures.items():
        md += [f"## {name}", "", f"![{name}]({path.relative_to(out).as_posix()})", ""]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        page.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    page.append("</body></html>")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text("\n".join(page))
    return out / "report.md", out / "report.html"
