"""The floor's database work: the rows a discharge leaves at each party, written by raw asyncpg, one transaction per
party per call.

The tables have the columns of the real ones (services/*/migrations) with their primary keys and the unique keys
that make a request idempotent, and nothing else: no triggers (the real ledger's balance, guards and aggregates
are triggers; here the balances and the month aggregate are written as plain upserts), no secondary indexes, no
checks. Each row is written once, in its final state: where the settlement protocol commits a `pending` row before
calling downstream and marks it `settled` after (docs/settlement-protocol.md), the floor inserts it `settled`
after the downstream answer. Per cross-region discharge of n lines, as the real parties write them:

| party | call | rows |
|---|---|---|
| treating agency | Admit | 1 encounter |
| treating agency | UploadCharges (per batch of 25) | the batch's charge lines + 1 upload |
| treating agency | Settle | 1 settlement, 1 ledger transaction, 2 postings, 2 balances |
| clearing house | SettleClaim | 1 claim, 1 ledger transaction, 4 postings, 4 balances, 1 month aggregate |
| insured agency | Adjudicate | 1 settlement, 1 accumulator row |

A local stay skips the clearing house, as in the stack. What is read (the member at VerifyMember, the encounter's
lines at Settle, the catalogue) is not: the floor keeps an encounter's lines in memory between its calls.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg

from services.common.db import POOL_SIZE_MAX

SCHEMAS = {
    "treating": """
CREATE TABLE IF NOT EXISTS encounters (encounter_id uuid PRIMARY KEY, request_id uuid NOT NULL UNIQUE,
  request bytea NOT NULL, hospital_code text NOT NULL, hospital_level integer NOT NULL, insured_region text NOT NULL,
  member_id text NOT NULL, id_number text NOT NULL, name text NOT NULL, admitted_on date NOT NULL,
  emergency boolean NOT NULL, diagnoses text[] NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS charge_lines (encounter_id uuid NOT NULL, line_id text NOT NULL, position integer NOT NULL,
  code text NOT NULL, qty_e4 bigint NOT NULL, unit_price_fen bigint NOT NULL, amount_fen bigint NOT NULL,
  service_date date NOT NULL, voided_at timestamptz, void_request_id uuid, void_reason text,
  PRIMARY KEY (encounter_id, line_id));
CREATE TABLE IF NOT EXISTS uploads (request_id uuid PRIMARY KEY, encounter_id uuid NOT NULL, request bytea NOT NULL,
  response bytea NOT NULL);
CREATE TABLE IF NOT EXISTS settlements (settlement_id uuid PRIMARY KEY, request_id uuid NOT NULL UNIQUE,
  encounter_id uuid NOT NULL, hospital_code text NOT NULL, insured_region text NOT NULL, local boolean NOT NULL,
  status text NOT NULL, request bytea NOT NULL, claim bytea NOT NULL, response bytea, error bytea, total_fen bigint,
  fund_pay_fen bigint, psn_pay_fen bigint, settled_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(),
  discharged_on date, payout_month text, settlement_day date NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_transactions (tx_id bigserial PRIMARY KEY, settlement_id uuid NOT NULL,
  kind text NOT NULL, payout_month text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS ledger_postings (tx_id bigint NOT NULL, account text NOT NULL, amount_fen bigint NOT NULL,
  PRIMARY KEY (tx_id, account));
CREATE TABLE IF NOT EXISTS ledger_balances (account text PRIMARY KEY, balance_fen bigint NOT NULL);
""",
    "clearinghouse": """
CREATE TABLE IF NOT EXISTS claims (settlement_id uuid PRIMARY KEY, treating_region text NOT NULL,
  insured_region text NOT NULL, member_id text NOT NULL, hospital_code text NOT NULL, status text NOT NULL,
  catalogue_rule text NOT NULL, request bytea NOT NULL, response bytea, total_fen bigint, fund_pay_fen bigint,
  psn_pay_fen bigint, settled_at timestamptz, clearing_month text, created_at timestamptz NOT NULL DEFAULT now(),
  hifp_fen bigint, hifmi_fen bigint, maf_fen bigint, admitted_on date, discharged_on date, routed bytea,
  flags text[] NOT NULL, settlement_day date NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_transactions (tx_id bigserial PRIMARY KEY, settlement_id uuid, kind text NOT NULL,
  clearing_month text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS ledger_postings (tx_id bigint NOT NULL, account text NOT NULL, amount_fen bigint NOT NULL,
  PRIMARY KEY (tx_id, account));
CREATE TABLE IF NOT EXISTS ledger_balances (account text PRIMARY KEY, balance_fen bigint NOT NULL);
CREATE TABLE IF NOT EXISTS clearing_aggregates (clearing_month text NOT NULL, insured_region text NOT NULL,
  treating_region text NOT NULL, settlements integer NOT NULL, cancels integer NOT NULL, fund_pay_fen bigint NOT NULL,
  PRIMARY KEY (clearing_month, insured_region, treating_region));
""",
    "insured": """
CREATE TABLE IF NOT EXISTS accumulators (member_id text NOT NULL, year integer NOT NULL, deductible_fen bigint NOT NULL,
  eligible_fen bigint NOT NULL, hifp_fen bigint NOT NULL, burden_fen bigint NOT NULL, hifmi_fen bigint NOT NULL,
  assist_base_fen bigint NOT NULL, maf_fen bigint NOT NULL, admissions integer NOT NULL, PRIMARY KEY (member_id, year));
CREATE TABLE IF NOT EXISTS settlements (settlement_id uuid PRIMARY KEY, member_id text NOT NULL, year integer NOT NULL,
  treating_region text NOT NULL, status text NOT NULL, total_fen bigint NOT NULL, fund_pay_fen bigint NOT NULL,
  psn_pay_fen bigint NOT NULL, hifp_fen bigint NOT NULL, hifmi_fen bigint NOT NULL, maf_fen bigint NOT NULL,
  delta jsonb NOT NULL, request bytea NOT NULL, response bytea NOT NULL, settled_at timestamptz NOT NULL DEFAULT now(),
  discharged_on date, settlement_day date NOT NULL);
""",
}

UPSERT_BALANCE = ("INSERT INTO ledger_balances (account, balance_fen) VALUES ($1, $2) ON CONFLICT (account) "
                  "DO UPDATE SET balance_fen = ledger_balances.balance_fen + excluded.balance_fen")


async def open_pool(dsn: str, party_kind: str) -> asyncpg.Pool:
    """A pool as big as a real party's (services/common/db.py), its tables created."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE_MAX)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMAS[party_kind])
    return pool


async def post(conn: asyncpg.Connection, settlement_id: uuid.UUID, month_column: str, month: str,
               postings: list[tuple[str, int]]) -> None:
    """A ledger transaction, its postings and the balances they move (accounts in order: no deadlock between two
    transactions moving the same accounts)."""
    tx_id = await conn.fetchval(f"INSERT INTO ledger_transactions (settlement_id, kind, {month_column}) "
                                "VALUES ($1, 'settlement', $2) RETURNING tx_id", settlement_id, month)
    ordered = sorted(postings)
    await conn.executemany("INSERT INTO ledger_postings (tx_id, account, amount_fen) VALUES ($1, $2, $3)",
                           [(tx_id, account, amount) for account, amount in ordered])
    await conn.executemany(UPSERT_BALANCE, ordered)


async def write_encounter(pool: asyncpg.Pool, encounter_id: uuid.UUID, request_id: str, request: bytes,
                          hospital_code: str, level: int, insured_region: str, member_id: str, id_number: str,
                          name: str, admitted_on: date, emergency: bool, diagnoses: list[str]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO encounters (encounter_id, request_id, request, hospital_code, hospital_level, insured_region, "
            "member_id, id_number, name, admitted_on, emergency, diagnoses) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            encounter_id, uuid.UUID(request_id), request, hospital_code, level, insured_region, member_id, id_number,
            name, admitted_on, emergency, diagnoses)


async def write_upload(pool: asyncpg.Pool, encounter_id: uuid.UUID, first_position: int, lines: list[tuple],
                       request_id: str, request: bytes, response: bytes) -> None:
    """`lines`: (line_id, code, qty_e4, unit_price_fen, amount_fen, service_date) each."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO charge_lines (encounter_id, line_id, position, code, qty_e4, unit_price_fen, amount_fen, "
            "service_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(encounter_id, line[0], first_position + index, *line[1:]) for index, line in enumerate(lines)])
        await conn.execute("INSERT INTO uploads (request_id, encounter_id, request, response) VALUES ($1, $2, $3, $4)",
                           uuid.UUID(request_id), encounter_id, request, response)


async def write_treating_settlement(pool: asyncpg.Pool, settlement_id: uuid.UUID, request_id: str,
                                    encounter_id: uuid.UUID, hospital_code: str, insured_region: str, local: bool,
                                    request: bytes, claim: bytes, response: bytes, split: tuple[int, int, int],
                                    discharged_on: date, month: str, postings: list[tuple[str, int]]) -> None:
    total_fen, fund_pay_fen, psn_pay_fen = split
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO settlements (settlement_id, request_id, encounter_id, hospital_code, insured_region, local, "
            "status, request, claim, response, total_fen, fund_pay_fen, psn_pay_fen, settled_at, discharged_on, "
            "payout_month, settlement_day) VALUES ($1, $2, $3, $4, $5, $6, 'settled', $7, $8, $9, $10, $11, $12, $13, "
            "$14, $15, $16)",
            settlement_id, uuid.UUID(request_id), encounter_id, hospital_code, insured_region, local, request, claim,
            response, total_fen, fund_pay_fen, psn_pay_fen, datetime.now(UTC), discharged_on, month, date.today())
        await post(conn, settlement_id, "payout_month", month, postings)


async def write_claim(pool: asyncpg.Pool, settlement_id: uuid.UUID, treating_region: str, insured_region: str,
                      member_id: str, hospital_code: str, request: bytes, response: bytes, split: tuple[int, int, int],
                      admitted_on: date, discharged_on: date, month: str, postings: list[tuple[str, int]]) -> None:
    total_fen, fund_pay_fen, psn_pay_fen = split
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO claims (settlement_id, treating_region, insured_region, member_id, hospital_code, status, "
            "catalogue_rule, request, response, total_fen, fund_pay_fen, psn_pay_fen, settled_at, clearing_month, "
            "hifp_fen, hifmi_fen, maf_fen, admitted_on, discharged_on, routed, flags, settlement_day) "
            "VALUES ($1, $2, $3, $4, $5, 'settled', 'treating', $6, $7, $8, $9, $10, $11, $12, $9, 0, 0, $13, $14, $6, "
            "'{}', $15)",
            settlement_id, treating_region, insured_region, member_id, hospital_code, request, response, total_fen,
            fund_pay_fen, psn_pay_fen, datetime.now(UTC), month, admitted_on, discharged_on, date.today())
        await post(conn, settlement_id, "clearing_month", month, postings)
        await conn.execute(
            "INSERT INTO clearing_aggregates (clearing_month, insured_region, treating_region, settlements, cancels, "
            "fund_pay_fen) VALUES ($1, $2, $3, 1, 0, $4) ON CONFLICT (clearing_month, insured_region, treating_region) "
            "DO UPDATE SET settlements = clearing_aggregates.settlements + 1, "
            "fund_pay_fen = clearing_aggregates.fund_pay_fen + excluded.fund_pay_fen",
            month, insured_region, treating_region, fund_pay_fen)


async def write_adjudication(pool: asyncpg.Pool, settlement_id: uuid.UUID, member_id: str, year: int,
                             treating_region: str, split: tuple[int, int, int], request: bytes, response: bytes,
                             discharged_on: date) -> None:
    total_fen, fund_pay_fen, psn_pay_fen = split
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO accumulators (member_id, year, deductible_fen, eligible_fen, hifp_fen, burden_fen, hifmi_fen, "
            "assist_base_fen, maf_fen, admissions) VALUES ($1, $2, 0, $3, $4, 0, 0, 0, 0, 1) "
            "ON CONFLICT (member_id, year) DO UPDATE SET "
            "eligible_fen = accumulators.eligible_fen + excluded.eligible_fen, hifp_fen = accumulators.hifp_fen + excluded.hifp_fen, admissions = accumulators.admissions + 1",
            member_id, year, total_fen, fund_pay_fen)
        await conn.execute(
            "INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
            "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, discharged_on, settlement_day) "
            "VALUES ($1, $2, $3, $4, 'settled', $5, $6, $7, $6, 0, 0, $8::jsonb, $9, $10, $11, $12)",
            settlement_id, member_id, year, treating_region, total_fen, fund_pay_fen, psn_pay_fen,
            '{"eligible_fen": %d, "hifp_fen": %d, "admissions": 1}' % (total_fen, fund_pay_fen), request, response,
            discharged_on, date.today())
