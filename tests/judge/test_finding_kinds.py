"""The finding-kinds table: the judge's findings on a phantom with every pitfall, repaired as the table says by the
same fixes cell code a notebook runs, leave nothing for the checks to find; the fix table says what the table says."""

import pytest

from jupyter_medagent.contracts.findings import EXCLUDED, KINDS, PITFALL_KINDS, fix_action, fixable
from jupyter_medagent.imaging import build_data_card
from jupyter_medagent.synth.replicas import synth_cardiac
from jupyter_medagent.judge import check_dataset, check_pair
from jupyter_medagent.pipelines.cases import fix_case, load_cases, reorient_cases
from jupyter_medagent.plan.plan import fix_entries


def test_every_kind_the_fixes_cell_handles_says_what_it_did():
    assert all(kind.done for name, kind in KINDS.items() if fixable(name))
    assert all(fixable(kind) for kind in PITFALL_KINDS)  # whatever the phantom plants, the fixes cell handles
    assert fix_action("damaged_layout") is None and fix_action("exclude") == "exclude_label"


def test_the_phantoms_pitfalls_are_repaired_as_the_table_says(tmp_path):
    synth_cardiac(tmp_path, cases=8, pitfalls="all")
    card = build_data_card(tmp_path)
    findings = [f.to_dict() for f in check_dataset(card, convention="acdc")]
    assert {f["kind"] for f in findings} >= set(PITFALL_KINDS)
    code, handled = fix_entries(findings)
    fixes = eval(code)  # the fixes cell's list, as the notebook has it
    assert {kind for _, kind, _ in fixes} <= {name for name in KINDS if fixable(name)} | {"exclude"}
    cases = load_cases(card)
    log = [(case, kind, fix_case(cases[case], kind, evidence)) for case, kind, evidence in fixes]
    assert all(done == (KINDS[kind].done if kind != "exclude" else EXCLUDED) for _, kind, done in log)
    reorient_cases(cases, ("R", "A", "S"))
    remaining = [f for c in cases.values() if c.label is not None for f in check_pair(c.image, c.label, c.case_id,
                                                                                       convention="acdc")]
    assert remaining == []
    excluded = {case for case, kind, _ in fixes if fix_action(kind) == "exclude_label"}
    assert excluded and all(cases[c].label is None for c in excluded)


def test_a_kind_with_no_fix_is_refused_by_the_fixes_code(tmp_path):
    synth_cardiac(tmp_path, cases=1)
    case = next(iter(load_cases(build_data_card(tmp_path)).values()))
    with pytest.raises(ValueError, match="no fix known"):
        fix_case(case, "damaged_layout", {})
