"""``medagent inspect DIR``: the data card of a folder plus the quantitative judge's findings."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="data card and quality findings for a folder of scans")
    parser.add_argument("folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent.imaging.datacard import build_data_card
    from jupyter_medagent.judge.quantitative import check_dataset, verdict_of

    card = build_data_card(args.folder)
    findings = [f.to_dict() for f in check_dataset(card)]
    if args.json:
        print(json.dumps({"card": card.to_dict(), "findings": findings, "verdict": verdict_of(findings)}, indent=1))
        return 0
    print(card.to_text())
    print()
    print(format_findings(findings))
    return 0


def format_findings(findings: list[dict]) -> str:
    from jupyter_medagent.judge.quantitative import verdict_of

    if not findings:
        return "Findings: none (verdict ok)"
    lines = [f"Findings: {len(findings)} (verdict {verdict_of(findings)})"]
    lines += [f"- [{f['severity']}] {f['case']}: {f['kind']} — {f['message']}" for f in findings]
    return "\n".join(lines)
