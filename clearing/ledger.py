"""Double-entry postings of the two ledgers — SPEC §6: the clearing house's and each treating agency's.

A transaction is a tuple of postings whose signed amounts (debit +, credit −) sum to zero. The
database checks the same at commit; this module asserts it before anything is written.

In both ledgers an account is a position of the party it names: a debit (+) balance is what that
party is owed, a credit (−) balance what it owes. The same name means the same position in both
ledgers: the treating agency's `insured/{I}/payable/{T}` mirrors the clearing house's account of that
name, so the two can be reconciled account by account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction: `amount_fen` > 0 debits `account`, < 0 credits it."""

    account: str
    amount_fen: int


def treating_receivable(treating_region: str, insured_region: str) -> str:
    """The treating agency's receivable from one insured region (就医地应收)."""
    return f"treating/{treating_region}/receivable/{insured_region}"


def insured_payable(insured_region: str, treating_region: str) -> str:
    """The insured region's payable to one treating region (参保地应付)."""
    return f"insured/{insured_region}/payable/{treating_region}"


def prepayment(insured_region: str) -> str:
    """The insured region's prepayment (预付金) still available at the clearing house (debit balance)."""
    return f"insured/{insured_region}/prepayment"


def prepayment_drawn(insured_region: str) -> str:
    """What settlements have drawn on the region's prepayment since it was funded."""
    return f"insured/{insured_region}/prepayment_drawn"


def prepayment_received(insured_region: str) -> str:
    """The clearing house's side of the money a region deposited as prepayment."""
    return f"clearinghouse/prepayment_received/{insured_region}"


# The clearing house's own account for the hub transfers (清算资金): credited with what a net debtor pays in,
# debited with what the clearing house pays out to a net creditor. Zero once all of a month's transfers are
# confirmed; in between, a credit balance is money received and owed onward.
HUB_TRANSFERS = "clearinghouse/transfers"


def hospital_receivable(hospital_code: str) -> str:
    """What the treating agency owes a hospital for the funds' share of its settlements (拨付), in the
    agency's ledger."""
    return f"hospital/{hospital_code}/receivable"


def local_fund_payable(region: str) -> str:
    """The region's own pooled fund (统筹基金), which pays its members' same-region stays; in the
    treating agency's ledger, its credit balance is the fund's expense on local stays."""
    return f"fund/{region}/payable"


def assert_balanced(postings: tuple[Posting, ...]) -> None:
    assert postings, "a transaction has postings"
    assert sum(posting.amount_fen for posting in postings) == 0, "debits equal credits"
    assert len({posting.account for posting in postings}) == len(postings), "one posting per account"


def settlement_postings(treating_region: str, insured_region: str, fund_pay_fen: int) -> tuple[Posting, ...]:
    """The obligation of one cross-region settlement — the insured region owes the funds' share — and
    its draw on that region's prepayment (SPEC §7: every settlement draws on it, never blocked). A
    settlement the funds pay nothing for posts nothing: the empty tuple (the database refuses zero
    postings); it still counts among its month's settlements (the claim, not the ledger, says so)."""
    assert treating_region != insured_region, "same-region stays never reach the clearing house ledger"
    assert fund_pay_fen >= 0
    if fund_pay_fen == 0:
        return ()
    postings = (Posting(treating_receivable(treating_region, insured_region), fund_pay_fen),
                Posting(insured_payable(insured_region, treating_region), -fund_pay_fen),
                Posting(prepayment_drawn(insured_region), fund_pay_fen),
                Posting(prepayment(insured_region), -fund_pay_fen))
    assert_balanced(postings)
    return postings


def payout_postings(hospital_code: str, treating_region: str, insured_region: str,
                    fund_pay_fen: int) -> tuple[Posting, ...]:
    """The treating agency's transaction for one settlement: the hospital is owed the funds' share,
    owed by the insured region through the clearing house (cross-region) or by the region's own fund
    (local). A settlement the funds pay nothing for posts nothing: the empty tuple."""
    assert hospital_code[1:7] == treating_region, "a treating agency posts for its own hospitals only"
    assert fund_pay_fen >= 0
    if fund_pay_fen == 0:
        return ()
    counter = (local_fund_payable(treating_region) if insured_region == treating_region
               else insured_payable(insured_region, treating_region))
    postings = (Posting(hospital_receivable(hospital_code), fund_pay_fen), Posting(counter, -fund_pay_fen))
    assert_balanced(postings)
    return postings


def hospital_held_back(hospital_code: str) -> str:
    """调剂金 withheld from a hospital's DRG advances, owed to it until the year end (docs/hospital-payment.md)."""
    return f"hospital/{hospital_code}/held_back"


def hospital_paid(hospital_code: str) -> str:
    """What the treating agency has paid the hospital (月度预拨 and year-end settlements; a clawback is negative)."""
    return f"hospital/{hospital_code}/paid"


def drg_budget(treating_region: str) -> str:
    """The treating region's DRG budget: what its hospital payments spend beyond the item claims they settle."""
    return f"drg/{treating_region}/budget"


def nonzero(postings: tuple[Posting, ...]) -> tuple[Posting, ...]:
    """Zero legs omitted; nothing at all when every leg is zero."""
    kept = tuple(posting for posting in postings if posting.amount_fen != 0)
    if kept:
        assert_balanced(kept)
    return kept


def payment_month_postings(hospital_code: str, treating_region: str, receivable_fen: int, hold_back_fen: int,
                           paid_fen: int) -> tuple[Posting, ...]:
    """A hospital's monthly payment: its receivable of the payout month (the net R of its postings there) is
    settled, the 调剂金 becomes owed to it, what it is paid is paid, and the DRG budget bears the difference:
    receivable −R, held_back +hold-back, paid +paid, budget −(paid + hold-back − R)."""
    assert hospital_code[1:7] == treating_region and hold_back_fen >= 0
    return nonzero((Posting(hospital_receivable(hospital_code), -receivable_fen),
                    Posting(hospital_held_back(hospital_code), hold_back_fen),
                    Posting(hospital_paid(hospital_code), paid_fen),
                    Posting(drg_budget(treating_region), -(paid_fen + hold_back_fen - receivable_fen))))


def payment_year_postings(hospital_code: str, treating_region: str, hold_backs_fen: int,
                          settlement_fen: int) -> tuple[Posting, ...]:
    """A hospital's year-end settlement: the year's 调剂金 is released, the settlement paid (negative: clawed back,
    追回), the DRG budget bears the difference: held_back −hold-backs, paid +settlement,
    budget −(settlement − hold-backs)."""
    assert hospital_code[1:7] == treating_region and hold_backs_fen >= 0
    return nonzero((Posting(hospital_held_back(hospital_code), -hold_backs_fen),
                    Posting(hospital_paid(hospital_code), settlement_fen),
                    Posting(drg_budget(treating_region), -(settlement_fen - hold_backs_fen))))


def check_payouts_match_ledger(paid_fen_by_hospital: Mapping[str, int], ledger_fen_by_hospital: Mapping[str, int],
                               scope: str) -> None:
    """The payout list (from the settlements) and the hospitals' receivables (from the ledger) agree,
    hospital by hospital, over `scope` (a month's movements, or all months against the balances).
    A hospital at zero may be missing on either side."""
    paid = {code: fen for code, fen in paid_fen_by_hospital.items() if fen}
    ledger = {code: fen for code, fen in ledger_fen_by_hospital.items() if fen}
    assert paid == ledger, f"payouts and hospital receivables disagree over {scope}: {paid} != {ledger}"


def mirror(postings: tuple[Posting, ...]) -> tuple[Posting, ...]:
    """The reversing transaction: every leg with its sign flipped; nothing is deleted or updated. The
    mirror of nothing posted (a settlement the funds paid nothing for) is nothing."""
    if not postings:
        return ()
    reversed_postings = tuple(Posting(posting.account, -posting.amount_fen) for posting in postings)
    assert_balanced(reversed_postings)
    return reversed_postings


def topup_postings(insured_region: str, amount_fen: int) -> tuple[Posting, ...]:
    """A region deposits `amount_fen` into its prepayment."""
    assert amount_fen > 0
    postings = (Posting(prepayment(insured_region), amount_fen), Posting(prepayment_received(insured_region), -amount_fen))
    assert_balanced(postings)
    return postings


def clearing_postings(region: str, cells: Iterable[tuple[str, str, int]]) -> tuple[Posting, ...]:
    """A region's clearing (清算) of one closed month, posted when its hub transfer is confirmed — or at the close
    when its net position is zero and no transfer is due (SPEC §7, issue 9 item 2).

    `cells` are the month's frozen gross cells (insured region, treating region, fund_pay fen, cancels and
    reversals netted). The transaction closes what the month left on the region's accounts:

    * its payables as insured region (`insured/{region}/payable/{t}` +owed) and its receivables as treating
      region (`treating/{region}/receivable/{i}` −owed), because the net transfer settles both;
    * the month's draws on its prepayment (`prepayment` +drawn, `prepayment_drawn` −drawn): the obligations they
      covered are paid, so the prepayment is back to its deposited level;
    * its net transfer through the clearing house (`HUB_TRANSFERS` +net: paid out to a creditor, −|net| received
      from a debtor).

    Zero legs are left out; a region the month left nothing on gets the empty tuple.
    """
    owed_by: dict[str, int] = {}  # treating region → what `region` owes it
    owed_to: dict[str, int] = {}  # insured region → what it owes `region`
    for insured_region, treating_region, amount_fen in cells:
        assert insured_region != treating_region, "same-region stays never reach the clearing house ledger"
        if insured_region == region:
            owed_by[treating_region] = owed_by.get(treating_region, 0) + amount_fen
        elif treating_region == region:
            owed_to[insured_region] = owed_to.get(insured_region, 0) + amount_fen
    drawn_fen = sum(owed_by.values())
    net_fen = sum(owed_to.values()) - drawn_fen
    legs = [Posting(insured_payable(region, treating), fen) for treating, fen in sorted(owed_by.items()) if fen]
    legs += [Posting(treating_receivable(region, insured), -fen) for insured, fen in sorted(owed_to.items()) if fen]
    if drawn_fen:
        legs += [Posting(prepayment(region), drawn_fen), Posting(prepayment_drawn(region), -drawn_fen)]
    if net_fen:
        legs.append(Posting(HUB_TRANSFERS, net_fen))
    postings = tuple(legs)
    if postings:
        assert_balanced(postings)
        assert len(postings) >= 2, "one leg alone cannot balance"
    return postings
