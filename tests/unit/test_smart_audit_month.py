"""事后 monthly audit at the insured agency (clearing/smart_audit/month.py): the insured library applied to the
recorded line findings, the cross-stay rules afresh, and which disputes a run raises."""

from datetime import date

from clearing.disputes import finding_dispute_key
from clearing.smart_audit.library import Action, Result, RuleId, parse_rule_library
from clearing.smart_audit.model import Finding, OtherStay
from clearing.smart_audit.month import MonthStay, disputes_to_raise, stay_findings

LIBRARY = parse_rule_library('[AUD-DAYQTY]\naction = "dispute"\n[AUD-EXCL]\naction = "dispute"\n'
                             '[AUD-LEVEL]\nenabled = false\n[AUD-OVERLAP]\naction = "warn"\n')


def recorded(rule_id: RuleId, amount_fen: int, action: Action = Action.WARN,
             result: Result = Result.DEFINITE) -> Finding:
    return Finding(rule_id, "x", result, action, amount_fen, ("1",), (), "evidence")


def stay(settlement_id: str = "s1", fund_pay_fen: int = 5000, *findings: Finding) -> MonthStay:
    return MonthStay(settlement_id, "M1", "440100", fund_pay_fen, date(2026, 6, 10), date(2026, 6, 15), ("J18.9",),
                     findings)


def test_the_insured_library_decides_the_action_and_drops_what_it_disables():
    found = stay_findings(stay("s1", 5000, recorded(RuleId.EXCL, 300), recorded(RuleId.LEVEL, 900),
                               recorded(RuleId.DAYQTY, 200, Action.BLOCK)), (), LIBRARY)
    assert [(item.rule_id, item.action) for item in found] == [(RuleId.DAYQTY, Action.DISPUTE),
                                                              (RuleId.EXCL, Action.DISPUTE)]


def test_cross_stay_rules_run_afresh_against_the_other_stays_but_never_the_stay_itself():
    history = (OtherStay("s1", date(2026, 6, 10), date(2026, 6, 15), ("J18.9",)),
               OtherStay("s2", date(2026, 6, 14), date(2026, 6, 20), ("K35.8",)))
    found = stay_findings(stay(), history, LIBRARY)
    assert [(item.rule_id, item.action) for item in found] == [(RuleId.OVERLAP, Action.WARN)]
    assert "s2" in found[0].evidence


def test_disputes_add_up_a_rules_amounts_and_are_capped_at_what_the_fund_pay_leaves():
    one = stay("s1", 1000, recorded(RuleId.DAYQTY, 300, Action.DISPUTE), recorded(RuleId.DAYQTY, 400, Action.DISPUTE),
               recorded(RuleId.EXCL, 500, Action.DISPUTE), recorded(RuleId.SEX, 700, Action.WARN))
    two = stay("s2", 100, recorded(RuleId.IDLE, 0, Action.DISPUTE, Result.SUSPICIOUS),
               recorded(RuleId.EXCL, 250, Action.DISPUTE))
    audited = [(one, one.recorded), (two, two.recorded)]
    claims = disputes_to_raise(audited, {"s2": 40}, set())
    assert [(c.settlement_id, c.rule_id, c.amount_fen) for c in claims] == [
        ("s1", RuleId.DAYQTY, 700), ("s1", RuleId.EXCL, 300), ("s2", RuleId.EXCL, 60)]


def test_a_second_run_raises_nothing_new():
    one = stay("s1", 1000, recorded(RuleId.DAYQTY, 300, Action.DISPUTE))
    assert disputes_to_raise([(one, one.recorded)], {"s1": 300}, {("s1", "AUD-DAYQTY")}) == ()


def test_the_key_of_a_finding_dispute_is_one_per_settlement_and_rule():
    assert finding_dispute_key("s1", "AUD-DAYQTY") == finding_dispute_key("s1", "AUD-DAYQTY")
    assert finding_dispute_key("s1", "AUD-DAYQTY") != finding_dispute_key("s1", "AUD-EXCL")
    assert finding_dispute_key("s1", "AUD-DAYQTY") != finding_dispute_key("s2", "AUD-DAYQTY")
