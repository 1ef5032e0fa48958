"""Month close (SPEC §7): the frozen gross matrix of a month, netted and planned, as a proto answer.

Pure conversion around `clearing.netting`; the servicer loads the cells and stores the result.
"""

from __future__ import annotations

from datetime import datetime

from clearinghouse.v1 import clearing_house_pb2 as pb

from clearing import netting
from clearing.dates import first_open_month, next_month  # noqa: F401 - where the clearing house and its tests take them


def transfers(plan: tuple[netting.Transfer, ...]) -> list[pb.Transfer]:
    return [pb.Transfer(payer=item.payer, payee=item.payee, amount_fen=item.amount_fen) for item in plan]


def positions(values: dict[str, int]) -> list[pb.NetPosition]:
    return [pb.NetPosition(region=region, net_fen=values[region]) for region in sorted(values)]


def month_closing(month: str, closed_at: datetime, rows: list) -> pb.MonthClosing:  # noqa: ANN001 - asyncpg records
    """Net the month's cells at both levels and plan both ways."""
    matrix = netting.make_gross_matrix(
        (row["insured_region"], row["treating_region"], row["fund_pay_fen"]) for row in rows)
    region_positions = netting.net_positions(matrix)
    report = netting.netting_report(matrix)
    provinces = netting.province_matrix(matrix)
    province_positions = netting.net_positions(provinces)
    closing = pb.MonthClosing(
        month=month,
        cells=[pb.GrossCell(insured_region=row["insured_region"], treating_region=row["treating_region"],
                            settlements=row["settlements"], cancels=row["cancels"], amount_fen=row["fund_pay_fen"],
                            adjustments=row["adjustments"])
               for row in rows],
        positions=positions(region_positions),
        hub_transfers=transfers(netting.hub_plan(region_positions)),
        direct_transfers=transfers(netting.direct_plan(region_positions)),
        gross_total_fen=report.gross_total_fen, net_total_fen=report.net_total_fen,
        liquidity_saved_bp=report.liquidity_saved_bp,
        province_positions=positions(province_positions),
        province_transfers=transfers(netting.direct_plan(province_positions)),
        distributions=[
            pb.ProvinceDistribution(province=province,
                                    cities=positions(netting.province_distribution(matrix, province)),
                                    transfers=transfers(netting.province_transfers(matrix, province)))
            for province in sorted({netting.province_of(region) for region in region_positions})],
    )
    closing.closed_at.FromDatetime(closed_at)
    assert sum(item.net_fen for item in closing.positions) == 0
    return closing


def hub_transfer_of(closing: pb.MonthClosing, region: str) -> pb.Transfer | None:
    """The region's transfer of the hub plan (paid to or by the clearing house), None when its position is 0."""
    found = [item for item in closing.hub_transfers if region in (item.payer, item.payee)]
    assert len(found) <= 1, "the hub plan moves each region's money once"
    return found[0] if found else None


def transfer_status(closing: pb.MonthClosing, region: str, cleared) -> pb.TransferStatus:  # noqa: ANN001 - a month_clearings record or None
    """One region's transfer of a closed month and whether its clearing is posted."""
    positions = {item.region: item.net_fen for item in closing.positions}
    assert region in positions
    status = pb.TransferStatus(region=region, net_fen=positions[region], cleared=cleared is not None)
    transfer = hub_transfer_of(closing, region)
    if transfer is not None:
        status.transfer.CopyFrom(transfer)
        assert transfer.amount_fen == abs(positions[region])
    if cleared is not None:
        status.cleared_at.FromDatetime(cleared["cleared_at"])
        status.reference = cleared["reference"]
    return status


def transfer_statuses(closing: pb.MonthClosing, cleared: dict) -> list[pb.TransferStatus]:
    """Every region of the month, by region code."""
    return [transfer_status(closing, item.region, cleared.get(item.region)) for item in closing.positions]


def month_state(statuses: list[pb.TransferStatus]) -> int:
    """Settled once every region's clearing is posted; awaiting payment before."""
    return pb.MONTH_STATE_SETTLED if all(item.cleared for item in statuses) else pb.MONTH_STATE_AWAITING_PAYMENT
