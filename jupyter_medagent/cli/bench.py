"""``medagent bench``: run a suite (backends x tasks x wordings x skills x repeats, or the judge suite), record
every run in OUT/results.jsonl as it finishes (a re-run skips what is done) and write OUT/report.md/.html."""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_medagent.contracts.errors import MedagentError


def register(subparsers) -> None:
    from jupyter_medagent.agent.skills import SKILL_LEVELS
    from jupyter_medagent.isolation import ISOLATION_MODES

    bench = subparsers.add_parser(
        "bench", help="benchmark backends on a suite of tasks and wordings, judged on quality, with cost",
        description="Runs every backend on every task and wording of a suite, judges each run against the truth, "
                    "and writes results.jsonl (one line per finished run; re-running the command skips what is done), "
                    "every run's notebook and report.md/report.html with plots into --out.")
    bench.add_argument("--suite", default="default",
                       help="a shipped suite (default, judge) or the path of a suite file (.toml)")
    bench.add_argument("--backends", default="offline",
                       help="comma-separated selectors, e.g. offline,anthropic:MODEL,openai:MODEL@URL (default offline)")
    bench.add_argument("--repeats", type=int, default=1, help="runs of each backend x task x wording (default 1)")
    bench.add_argument("--out", default="medagent-bench", help="results folder (default medagent-bench)")
    bench.add_argument("--workers", type=int, default=1, help="runs at a time in local processes (default 1)")
    bench.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="submit the runs to the Ray cluster at ADDRESS instead (one task per run; needs the ray "
                            "extra; --out must be a folder every node sees at the same path)")
    bench.add_argument("--skills", default="all",
                       help=f"comma-separated skill levels to run each backend with ({', '.join(SKILL_LEVELS)}; default all)")
    bench.add_argument("--tasks", default=None, help="comma-separated task names (default: every task of the suite)")
    bench.add_argument("--wordings", default=None, help="comma-separated wordings: expert, ordinary, vague, misleading")
    bench.add_argument("--max-cost", type=float, default=None, metavar="USD", help="money budget of each run")
    bench.add_argument("--run-timeout", type=float, default=3600, metavar="S",
                       help="a local run still going after S seconds is killed and recorded as failed (default 3600; "
                            "not applied to --ray runs)")
    bench.add_argument("--isolation", default="auto", choices=ISOLATION_MODES, help="kernel isolation of every run")
    bench.add_argument("--vlm-judge", default=None, metavar="SELECTORS",
                       help="judge suite: comma-separated VLM judges to score beside the quantitative judge")
    bench.add_argument("--report-only", action="store_true", help="only rebuild the report from OUT/results.jsonl")
    bench.set_defaults(handler=bench_command)


def _names(text: str | None, known: list[str], what: str, where: str) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MedagentError(f"unknown {what} {', '.join(unknown)} in {where}; known: {', '.join(known)}")
    return names


def bench_command(args) -> int:
    from jupyter_medagent.agent.skills import SKILL_LEVELS
    from jupyter_medagent.bench.report import build_report
    from jupyter_medagent.bench.runner import (Bench, ResultsFile, make_task_data, read_results, run_local, run_ray,
                                               split_backends)
    from jupyter_medagent.bench.suite import WORDINGS, load_suite

    out = Path(args.out).resolve()
    if args.report_only:
        if not read_results(out):
            raise MedagentError(f"{out / 'results.jsonl'}: no results to report")
        _print_report(build_report(out))
        return 0
    suite = load_suite(args.suite)
    results = ResultsFile(out)
    done = {row["key"] for row in read_results(out)}
    if suite.kind == "judge":
        from jupyter_medagent.bench.judge_suite import judge_rows

        judge_rows(suite, out, split_backends(args.vlm_judge or ""), done, results.add)
        _print_report(build_report(out, f"medagent bench: {suite.name} suite"))
        return 0
    if args.repeats < 1 or args.workers < 1:
        raise MedagentError("--repeats and --workers must be at least 1")
    bench = Bench(suite, out, split_backends(args.backends),
                  skills=_names(args.skills, list(SKILL_LEVELS), "skill level(s)", "--skills"),
                  repeats=args.repeats,
                  tasks=_names(args.tasks, [t.name for t in suite.tasks], "task(s)", suite.path.name),
                  wordings=_names(args.wordings, list(WORDINGS), "wording(s)", "--wordings"),
                  max_cost=args.max_cost, isolation=args.isolation)
    _check_backends(bench.backends)
    pending = bench.pending()
    total = len(bench.specs())
    print(f"medagent bench: {suite.name} suite, {total} run(s), {total - len(pending)} already done, "
          f"{len(pending)} to go; results in {out / 'results.jsonl'}", file=sys.stderr, flush=True)
    finished = total - len(pending)

    def record(row: dict) -> None:
        nonlocal finished
        results.add(row)
        finished += 1
        print(f"[{finished}/{total}] {row['task']} / {row['wording']} / {row['backend']} (skills {row['skills']}, "
              f"repeat {row['repeat']}): {'SOLVED' if row['solved'] else 'failed'} in {row['seconds']:.0f} s, "
              f"{row['steps']} steps, {row['tokens']} tokens, ${row['cost_usd']:.4f}: {row['verdict']}",
              file=sys.stderr, flush=True)

    ready = make_task_data(pending, record)
    if args.ray:
        run_ray(ready, args.ray, record)
    else:
        run_local(ready, args.workers, args.run_timeout, record)
    _print_report(build_report(out, f"medagent bench: {suite.name} suite"))
    return 0


def _check_backends(selectors: list[str]) -> None:
    """Every backend can be made (a known selector, its key set) before any run starts."""
    from jupyter_medagent.backends import make_backend

    if not selectors:
        raise MedagentError("--backends names no backend")
    for selector in selectors:
        make_backend(selector)


def _print_report(paths) -> None:
    for path in paths:
        print(path)
