"""Double-entry postings of the clearing house's ledger — SPEC §6 (first cut).

A transaction is a tuple of postings whose signed amounts (debit +, credit −) sum to zero. The
database checks the same at commit; this module asserts it before anything is written.
"""

from __future__ import annotations

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


def assert_balanced(postings: tuple[Posting, ...]) -> None:
    assert postings, "a transaction has postings"
    assert sum(posting.amount_fen for posting in postings) == 0, "debits equal credits"
    assert len({posting.account for posting in postings}) == len(postings), "one posting per account"


def settlement_postings(treating_region: str, insured_region: str, fund_pay_fen: int) -> tuple[Posting, ...]:
    """The obligation of one cross-region settlement — the insured region owes the funds' share — and
    its draw on that region's prepayment (SPEC §7: every settlement draws on it, never blocked)."""
    assert treating_region != insured_region, "same-region stays never reach the clearing house ledger"
    assert fund_pay_fen >= 0
    postings = (Posting(treating_receivable(treating_region, insured_region), fund_pay_fen),
                Posting(insured_payable(insured_region, treating_region), -fund_pay_fen),
                Posting(prepayment_drawn(insured_region), fund_pay_fen),
                Posting(prepayment(insured_region), -fund_pay_fen))
    assert_balanced(postings)
    return postings


def mirror(postings: tuple[Posting, ...]) -> tuple[Posting, ...]:
    """The reversing transaction: every leg with its sign flipped; nothing is deleted or updated."""
    reversed_postings = tuple(Posting(posting.account, -posting.amount_fen) for posting in postings)
    assert_balanced(reversed_postings)
    return reversed_postings


def topup_postings(insured_region: str, amount_fen: int) -> tuple[Posting, ...]:
    """A region deposits `amount_fen` into its prepayment."""
    assert amount_fen > 0
    postings = (Posting(prepayment(insured_region), amount_fen), Posting(prepayment_received(insured_region), -amount_fen))
    assert_balanced(postings)
    return postings
