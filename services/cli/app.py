"""`clearing-admin`, the operator CLI (README "Operator CLI"): the typer app, its sub-apps and `main()`.

Command bodies stay thin: they parse options and hand over to `offline` (no server) or to the
server-backed modules. Sub-apps group the nouns (`policy`, `catalog`, `settlement`, `stack`); add a
command to the sub-app it acts on. Every operator error is one `error: …` line on stderr and exit
code 2: commands raise `DomainError`s, and `main()` is the one place that turns them into that line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from clearing.errors import DomainError
from clearing.reconcile import DayKey
from services.cli import offline, online, output, reconcile_view
from services.stack.config import PREPAYMENT_FEN


def sub_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, add_completion=False)


app = typer.Typer(
    name="clearing-admin",
    help="Operator CLI of the cross-region settlement clearing house (异地就医直接结算清算中心).",
    no_args_is_help=True,
    add_completion=False,
    # Inputs carry personal data (ID numbers); a programmer-error traceback must not print locals.
    pretty_exceptions_show_locals=False,
)
policy_app = sub_app("Benefits policy files (待遇政策; format: services/regions/README.md).")
catalog_app = sub_app("Regional catalogue files (三个目录, CSV; README \"Data\").")
settlement_app = sub_app("Look up and explain settlements (needs the running stack).")
stack_app = sub_app("Start and stop the local stack (needs the embedded Postgres).")
app.add_typer(policy_app, name="policy")
app.add_typer(catalog_app, name="catalog")
app.add_typer(settlement_app, name="settlement")
app.add_typer(stack_app, name="stack")
month_app = sub_app("Monthly clearing: close a month (docs/architecture.md, \"The monthly clearing cycle\").")
netting_app = sub_app("Netting between regions of a closed month (docs/architecture.md).")
app.add_typer(month_app, name="month")
app.add_typer(netting_app, name="netting")
prepayment_app = sub_app("Insured regions' prepayments (预付金; docs/architecture.md, the monthly clearing cycle).")
app.add_typer(prepayment_app, name="prepayment")
transfer_app = sub_app("The hub transfers of a closed month: confirm a payment (docs/architecture.md).")
app.add_typer(transfer_app, name="transfer")
statement_app = sub_app("Statements per region: months, the year, hospitals' payouts (docs/architecture.md).")
app.add_typer(statement_app, name="statement")
discharge_app = sub_app("Feed the running stack: the HIS simulator's hospitals discharge generated patients.")
app.add_typer(discharge_app, name="discharge")
payouts_app = sub_app("A treating agency's payout lists to its hospitals (拨付): close a month.")
app.add_typer(payouts_app, name="payouts")
payment_app = sub_app("Paying a treating region's hospitals: DRG points, 单病种, 总额预付 (docs/hospital-payment.md).")
app.add_typer(payment_app, name="payment")
certs_app = sub_app("Development CA and the parties' certificates for mutual TLS (docs/security.md).")
app.add_typer(certs_app, name="certs")
# `audit` is both the offline smart audit (智能审核, SPEC §12.4: the group's own options, no subcommand) and the
# group of the operator audit log's `show` (docs/security.md); see `audit_command`.
audit_app = typer.Typer(
    help="Smart audit of one stay, offline (智能审核; docs/smart-audit.md): give --catalog, --kb, "
         "--rules, --member and --bill. Subcommands: the operator audit log (docs/security.md).",
    no_args_is_help=True, add_completion=False, invoke_without_command=True)
app.add_typer(audit_app, name="audit")
rules_app = sub_app("Smart-audit rule libraries (规则库, TOML; docs/smart-audit.md).")
app.add_typer(rules_app, name="rules")
drg_app = sub_app("CHS-DRG 1.1 grouping (疾病诊断相关分组; docs/drg.md): group stays offline.")
app.add_typer(drg_app, name="drg")
dispute_app = sub_app("Disputes between regions (拒付 / 申诉; docs/smart-audit.md \"Disputes\"): raise, answer, "
                      "decide, list, show (needs the running stack).")
app.add_typer(dispute_app, name="dispute")


@app.callback()
def global_options(
    operator: Annotated[str | None, typer.Option(
        "--operator", envvar="CLEARING_OPERATOR", metavar="NAME",
        help="The operator commands against the running stack call as (its certificate operator/NAME in the "
             "stack's certificate directory). Default: admin.")] = None,
) -> None:
    """Operator CLI of the cross-region settlement clearing house. Commands that talk to the running stack call
    it over mutual TLS as an operator; the certificate directory comes from the stack's configuration file."""
    online.OPERATOR = operator


InsecureFlag = Annotated[bool, typer.Option(
    "--insecure", help="Plaintext gRPC between every party instead of mutual TLS: no caller is authenticated. For "
                       "development only; every service logs a warning at start.")]

CatalogFile = Annotated[Path, typer.Option(
    "--catalog", help="Treating region's catalogue CSV (the format `catalog import` takes).")]
PolicyFile = Annotated[Path, typer.Option(
    "--policy", help="Insured region's policy TOML (format: services/regions/README.md).")]
MemberFile = Annotated[Path, typer.Option(
    "--member", help="Member and year-to-date JSON (`python -m services.datagen members` writes examples).")]
BillFile = Annotated[Path, typer.Option(
    "--bill", help="The bill JSON (`python -m services.datagen bills` writes examples); a visit has \"kind\", "
                   "\"disease\" and \"visit_on\".")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Region code the catalogue belongs to (a label).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine output: JSON on stdout.")]


@app.command("quote")
def quote_command(catalog: CatalogFile, policy: PolicyFile, member: MemberFile, bill: BillFile) -> None:
    """Quote a bill offline: classify and adjudicate, print the JSON split; persists nothing. A bill with
    "kind": "outpatient_special" is an outpatient special-disease visit (docs/outpatient-special.md)."""
    output.print_json(offline.quote_files(catalog, policy, member, bill))


@drg_app.command("group")
def drg_group(
    cases: Annotated[list[Path], typer.Option(
        "--case", help="A stay as C.json (docs/drg.md: principal_diagnosis, other_diagnoses, procedures, sex, "
                       "age_years, age_days, birth_weight_g, los_days, discharge_status). Repeat for several.")],
) -> None:
    """Group stays into CHS-DRG 1.1 DRGs offline: one JSON line per case, in order ("drg": "0000" = ungroupable,
    with the reason). No server, no database."""
    for result in offline.group_case_files(cases):
        output.print_json_line(result)


@policy_app.command("validate")
def policy_validate(
    files: Annotated[list[Path], typer.Argument(help="Policy TOML files; several of one region form its versions.")],
) -> None:
    """Parse and summarise policy files; files of one region must form a valid set of versions."""
    loaded, books = offline.load_policies(files)
    offline.show_policies(output.console(), loaded, books)


@catalog_app.command("validate")
def catalog_validate(
    file: Annotated[Path, typer.Argument(help="Catalogue CSV.")],
    region: RegionOption = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows listed per section.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Parse a catalogue file; show counts by kind and grade, unmapped, restricted and multi-version codes."""
    summary = offline.summarise_catalogue(offline.read_catalogue(file, region))
    if as_json:
        output.print_json(offline.summary_json(summary))
    else:
        offline.show_summary(output.console(), file, summary, limit)


@catalog_app.command("diff")
def catalog_diff(
    old: Annotated[Path, typer.Argument(help="The catalogue version in force.")],
    new: Annotated[Path, typer.Argument(help="The version about to be imported.")],
    region: RegionOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two versions of a region's catalogue: codes added, removed and changed, field by field."""
    diff = offline.compare_catalogues(old, new, region)
    if as_json:
        output.print_json(offline.diff_json(diff))
    else:
        offline.show_diff(output.console(), old, new, diff)


ConfigOption = Annotated[Path, typer.Option("--config", help="The running stack's configuration file.")]
DEFAULT_CONFIG = online.STACK_DIR / "stack.json"


@app.command("translate")
def translate_command(
    from_region: Annotated[str, typer.Argument(help="Region of the code.")],
    code: Annotated[str, typer.Argument(help="Local code in that region.")],
    to_region: Annotated[str | None, typer.Option("--to", help="Destination region; omit for the national code.")] = None,
    on: Annotated[str, typer.Option("--on", help="Day whose catalogue rows apply (YYYY-MM-DD).")] = "",
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Translate a local code to the national code and to another region's codes."""
    from services.common.clock import shanghai_today

    output.print_json(online.translate(config, from_region, code, to_region, on or shanghai_today().isoformat()))


SettlementRegionOption = Annotated[str | None, typer.Option(
    "--region", help="Treating region of the settlement; omitted: the clearing house names it for a cross-region "
                     "claim, else each region's treating agency is asked.")]


def look_up_settlement(config: Path, region: str | None, settlement_id: str) -> tuple[Any, str]:
    """The settlement at its treating agency, and where it was found (empty when --region named it)."""
    if region is not None:
        return online.get_settlement(config, region, settlement_id), ""
    return online.find_settlement(config, settlement_id)


@settlement_app.command("show")
def settlement_show(
    settlement_id: Annotated[str, typer.Argument(help="Settlement id (UUID).")],
    region: SettlementRegionOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Look up a settlement at its treating agency: split, lines, flags.

    --json is the proto's JSON mapping (enum values as proto names, as any gRPC JSON client sees them)."""
    settlement, found = look_up_settlement(config, region, settlement_id)
    if as_json:
        output.print_json(online.settlement_json(settlement))
    else:
        console = output.console()
        if found:
            console.print(f"({found})")
        online.show_settlement(console, settlement)


@settlement_app.command("explain")
def settlement_explain(
    settlement_id: Annotated[str, typer.Argument(help="Settlement id (UUID).")],
    region: SettlementRegionOption = None,
    lang: Annotated[str, typer.Option("--lang", help="zh or en.")] = "zh",
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Print the settlement's explanation, step by step, in Chinese or English."""
    online.check_language(lang)  # refused before any call
    settlement, found = look_up_settlement(config, region, settlement_id)
    if found:
        print(f"({found})")
    for number, text in enumerate(online.explain(settlement, lang), 1):
        print(f"{number:>3}. {text}")


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="Catalogue CSV, as `catalog validate` checks it.")],
    region: Annotated[str, typer.Option("--region", help="Region whose treating agency imports it.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Import a catalogue at the region's treating agency and put it in force (published to the clearing house)."""
    answer = online.import_catalogue(config, region, file)
    print(f"region {region}: version {answer.version} in force, {answer.row_count} rows, sha256 {answer.sha256}")


members_app = sub_app("An insured region's members, as an operator may see them (no names, ID numbers masked).")
app.add_typer(members_app, name="members")


@members_app.command("list")
def members_list(
    region: Annotated[str, typer.Argument(help="Insured region whose agency lists its members.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Members per page.")] = 20,
    after: Annotated[str, typer.Option("--after", help="The member id a previous page ended with (its `more:` hint).")]
        = "",
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """A page of the region's members by member id: scheme, filings, the ID number masked — the member ids a
    HIS admits patients under (docs/his-integration.md)."""
    from services.cli import lookup_view

    answer = lookup_view.list_members(config, region, limit, after)
    if as_json:
        output.print_json(lookup_view.members_json(answer))
    else:
        lookup_view.show_members(output.console(), region, answer)


DISEASE_HELP = "hypertension, diabetes, cancer_therapy, dialysis or transplant (门诊慢特病)."
RequestIdOption = Annotated[str, typer.Option(
    "--request-id", help="Idempotency key (UUID4) to repeat an earlier call safely; default: a new one.")]


@members_app.command("recognise")
def members_recognise(
    region: Annotated[str, typer.Argument(help="Insured region whose agency records the recognition.")],
    member_id: Annotated[str, typer.Argument(help="Member number.")],
    disease: Annotated[str, typer.Argument(help=DISEASE_HELP)],
    valid_from: Annotated[str, typer.Option("--from", help="First valid day, YYYY-MM-DD.")],
    diagnosis: Annotated[str, typer.Option("--diagnosis", help="ICD-10 (医保版) code it rests on, e.g. N18.500.")],
    valid_to: Annotated[str, typer.Option("--to", help="Last valid day (inclusive); default: open-ended.")] = "",
    certified_by: Annotated[str, typer.Option("--certified-by", help="Hospital code that certified it.")] = "",
    request_id: RequestIdOption = "",
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Record a member's outpatient special disease (认定备案, 2503): visits for it are paid from that day."""
    from services.cli import special_disease_view as view

    answer = view.record(config, region, member_id, disease, valid_from, valid_to, diagnosis, certified_by, request_id)
    if as_json:
        output.print_json(view.as_json(answer))
    else:
        print(view.recognition_line(answer.recognition))


@members_app.command("unrecognise")
def members_unrecognise(
    region: Annotated[str, typer.Argument(help="Insured region whose agency holds the recognition.")],
    member_id: Annotated[str, typer.Argument(help="Member number.")],
    recognition_id: Annotated[str, typer.Argument(help="The recognition's id (`members diseases` lists them).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is cancelled.")],
    request_id: RequestIdOption = "",
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a recognition (撤销, 2504); it is kept with when and why, and settled visits stay settled."""
    from services.cli import special_disease_view as view

    answer = view.cancel(config, region, member_id, recognition_id, reason, request_id)
    if as_json:
        output.print_json(view.as_json(answer))
    else:
        print(view.recognition_line(answer.recognition))


@members_app.command("diseases")
def members_diseases(
    region: Annotated[str, typer.Argument(help="Insured region of the member.")],
    member_id: Annotated[str, typer.Argument(help="Member number.")],
    on: Annotated[str, typer.Option("--on", help="Only those standing and valid that day (YYYY-MM-DD).")] = "",
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """A member's recognised outpatient special diseases (查询, 5301), cancelled ones too unless --on is given."""
    from services.cli import special_disease_view as view

    answer = view.list_recognitions(config, region, member_id, on)
    if as_json:
        output.print_json(view.as_json(answer))
    else:
        view.show(output.console(), region, member_id, answer)


@catalog_app.command("show")
def catalog_show(
    region: Annotated[str, typer.Argument(help="Treating region whose catalogue in force is searched.")],
    code: Annotated[str | None, typer.Option("--code", help="A local code: every row of it, over time.")] = None,
    search: Annotated[str | None, typer.Option(
        "--search", help="Text in the names (case-insensitive), or the start of a local or national code.")] = None,
    on: Annotated[str, typer.Option("--on", help="Only the rows valid that day (YYYY-MM-DD); default: every row.")]
        = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows at most.")] = 50,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Look codes up in the region's catalogue in force (就医地目录): what a bill line's `code` may be."""
    from services.cli import lookup_view

    answer = lookup_view.search_catalogue(config, region, code, search, on, limit)
    if as_json:
        output.print_json(lookup_view.catalogue_json(answer))
    else:
        lookup_view.show_catalogue(output.console(), region, answer)


@stack_app.command("up")
def stack_up(
    work_dir: Annotated[Path, typer.Option("--dir", help="Where the database, logs and config live.")] = online.STACK_DIR,
    members: Annotated[int, typer.Option("--members", min=1, max=100_000, help="Members per region.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated catalogues and members.")] = 2026,
    prepayment_fen: Annotated[int, typer.Option(
        "--prepayment-fen", min=0, max=10**14,
        help="Each insured region's first prepayment (预付金), fen; 0 leaves them unfunded.")] = PREPAYMENT_FEN,
    insecure: InsecureFlag = False,
) -> None:
    """Start Postgres (embedded, or DATABASE_URL) and every service; import catalogues, enrol members, fund prepayments.

    One stack per directory: a second `stack up` on the same --dir is refused. Ctrl-C, SIGTERM or `stack down` (from
    another terminal) stops every service and the embedded Postgres. Every party speaks mutual TLS with the
    certificates of DIR/certs (made if need be); --insecure for plaintext."""
    from services.cli.stack_view import stack_up as run

    run(work_dir, members, seed, prepayment_fen, insecure)


StackDirOption = Annotated[Path, typer.Option("--dir", help="The directory `stack up` was started with.")]


@stack_app.command("status")
def stack_status(work_dir: StackDirOption = online.STACK_DIR, as_json: JsonFlag = False) -> None:
    """The running stack's owner and every service's health, port, pid and uptime.

    Works from any terminal. Exit code 1 when a service is not serving, 2 when no stack runs in --dir."""
    from services.cli.stack_view import stack_status as run

    raise typer.Exit(run(work_dir, as_json))


@stack_app.command("down")
def stack_down(work_dir: StackDirOption = online.STACK_DIR) -> None:
    """Stop the stack that `stack up` started (in another terminal) in --dir, and report.

    Sends its owner SIGTERM, as Ctrl-C in its terminal would: it stops every service and the embedded Postgres.
    Waits until they are gone."""
    from services.cli.stack_view import stack_down as run

    run(work_dir)


@discharge_app.command("run")
def discharge_run(
    count: Annotated[int, typer.Option("--count", help="Patients to discharge (1–100000).")],
    region: Annotated[str | None, typer.Option("--region", help="Only the hospitals of this treating region "
                                               "discharge (patients insured anywhere); default: every region.")] = None,
    month: Annotated[str | None, typer.Option("--month", help="Month the stays are discharged in, YYYY-MM; default: "
                                              "last month, so that no stay ends in the future.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the patients and bills (the same seed, the same "
                                             "stays); default: a new one, printed at the end.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Discharges in flight (1–64).")] = 8,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Discharge and settle COUNT generated patients in the running stack, with a progress bar and a summary.

    Each discharge is admission (2201), charge upload (2301) and settlement at discharge (2304) at the hospital's
    treating agency, through the HIS simulator (RunDischarges); the summary counts this run only."""
    from services.cli.discharge_view import run

    run(config, count, region, month, seed, concurrency)


@app.command("demo")
def demo_command(
    count: Annotated[int, typer.Option("--count", min=1, max=100_000, help="Patients to discharge.")] = 2000,
    members: Annotated[int, typer.Option("--members", min=1, max=100_000, help="Members per region.")] = 200,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Discharges in flight.")] = 24,
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything generated.")] = 2026,
    insecure: InsecureFlag = False,
) -> None:
    """Run a realistic cross-region month on one machine and show the result (what `make demo` runs)."""
    from services.cli.demo import run

    run(count, members, concurrency, seed, insecure)


@app.command("simulate")
def simulate_command(
    seed: Annotated[int, typer.Option("--seed", help="Seed of the discharges, the kills and the proxies' draws.")] = 1,
    faults: Annotated[bool, typer.Option("--faults/--no-faults", help="Kill services and cut/delay links.")] = True,
    duration: Annotated[float, typer.Option("--duration", min=1, max=86_400, help="Seconds of discharging.")] = 60,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Discharges in flight.")] = 12,
    members: Annotated[int, typer.Option("--members", min=1, max=10_000, help="Members per region.")] = 40,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the run directory (service logs) even when it passes.")] = False,
    as_json: JsonFlag = False,
    insecure: InsecureFlag = False,
) -> None:
    """Fault harness: discharge patients through proxies while services are killed, then check every
    party's database against what the HIS saw. Exit 0 when every invariant holds, 1 when one fails."""
    from services.cli.simulate_view import simulate

    simulate(seed, faults, duration, concurrency, members, keep, as_json, insecure)


MonthArgument = Annotated[str, typer.Argument(help="Clearing month YYYY-MM.")]
ChartOption = Annotated[Path | None, typer.Option("--chart", help="Also write a chart of the net positions (.png/.svg).")]


@month_app.command("close")
def month_close(
    month: MonthArgument,
    empty: Annotated[bool, typer.Option("--empty", help="Close it even though it has no obligations.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Close a month that is over: freeze its obligations, net them, plan the transfers (closing twice changes
    nothing). A month without obligations is closed only with --empty: a closed month is closed for good."""
    from services.cli.netting_view import show_closing

    closing = online.close_month(config, month, allow_empty=empty)
    if as_json:
        output.print_json(online.json_format.MessageToDict(closing, preserving_proto_field_name=True))
    else:
        show_closing(output.console(), closing)
        online.show_transfers(output.console(), online.month_status(config, month))


@month_app.command("detach")
def month_detach(month: MonthArgument, config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Archive (归档) a closed, cleared month: detach its partitions of claims, ledger, request log and statement
    lines (what they add up to is kept). They stay as plain tables until dumped (pg_dump -t) and dropped; an open
    month, or one still in use, is refused (docs/architecture.md "Archiving a month")."""
    from services.cli.online import detach_month

    for name in detach_month(config, month):
        output.console().print(name)


@month_app.command("status")
def month_status(month: MonthArgument, config: ConfigOption = DEFAULT_CONFIG, as_json: JsonFlag = False) -> None:
    """A closed month's hub transfers and which have been paid (awaiting payment / settled)."""
    status = online.month_status(config, month)
    if as_json:
        output.print_json(online.json_format.MessageToDict(status, preserving_proto_field_name=True))
    else:
        online.show_transfers(output.console(), status)


@transfer_app.command("confirm")
def transfer_confirm(
    month: MonthArgument,
    region: Annotated[str, typer.Argument(help="The region whose hub transfer was paid.")],
    amount_fen: Annotated[int, typer.Option("--amount-fen", help="The amount paid, fen (must match the transfer).")],
    reference: Annotated[str, typer.Option("--reference", help="The payment's bank reference.")] = "",
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Record that a region's transfer of a closed month was paid; posts the region's clearing (清算)."""
    answer = online.confirm_transfer(config, month, region, amount_fen, reference)
    online.show_transfers(output.console(), online.month_status(config, month))
    online.show_prepayments(output.console(), [answer.prepayment])


@prepayment_app.command("terms")
def prepayment_terms(
    region: Annotated[str, typer.Argument(help="Insured region.")],
    months: Annotated[int, typer.Option("--months", help="Months of recent outflow the prepayment holds (1–12).")] = 2,
    threshold_bp: Annotated[int, typer.Option("--threshold-bp", help="Usage that warns, basis points.")] = 7000,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Set how a region's prepayment is sized and when it warns; it is re-sized at once."""
    online.show_prepayments(output.console(), [online.set_prepayment_terms(config, region, months, threshold_bp)])


@policy_app.command("whatif")
def policy_whatif(
    region: Annotated[str, typer.Argument(help="Insured region whose settlements are replayed.")],
    policy: Annotated[Path, typer.Option("--policy", help="The draft policy TOML (format: services/regions/README.md).")],
    months: Annotated[str, typer.Option("--months", help="Discharge months reported, FROM..TO (YYYY-MM..YYYY-MM).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the chart (PNG) and the report (JSON) here.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Replay the region's settlements under a draft policy and report what would have changed (基金监管): fund
    pay by fund, scheme and band, the members most affected. Reads only; exit 1 if the self-check fails."""
    from services.cli import whatif_view

    raise typer.Exit(whatif_view.run(config, region, policy, months, out, as_json))


@netting_app.command("show")
def netting_show(month: MonthArgument, config: ConfigOption = DEFAULT_CONFIG, chart: ChartOption = None) -> None:
    """Show a closed month's gross matrix, net positions and transfers."""
    from services.cli.netting_view import show_closing, write_chart

    closing = online.month_closing(config, month)
    show_closing(output.console(), closing)
    if chart is not None:
        write_chart(str(chart), closing)
        print(f"chart: {chart}")


@prepayment_app.command("status")
def prepayment_status(
    region: Annotated[str | None, typer.Option("--region", help="Only this insured region.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Balance, required amount, usage and warnings of every insured region's prepayment."""
    items = online.prepayments(config, region)
    if as_json:
        output.print_json([online.json_format.MessageToDict(item, preserving_proto_field_name=True) for item in items])
    else:
        online.show_prepayments(output.console(), items)


@prepayment_app.command("topup")
def prepayment_topup(
    region: Annotated[str, typer.Option("--region", help="Insured region depositing.")],
    amount_fen: Annotated[int, typer.Option("--amount-fen", min=1, help="Amount deposited, fen.")],
    required_fen: Annotated[int, typer.Option("--required-fen", min=0, help="New required amount, fen (0 keeps it).")] = 0,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Deposit into a region's prepayment (and optionally re-size it)."""
    online.show_prepayments(output.console(), [online.top_up(config, region, amount_fen, required_fen)])


@statement_app.command("show")
def statement_show(
    region: Annotated[str, typer.Argument(help="Region (as insured and as treating region).")],
    month: MonthArgument,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write every entry to this CSV file.")] = None,
) -> None:
    """A region's statement of a closed month: totals by fund, net position, transfers, every settlement."""
    summary, entries, disputes = online.statement(config, region, month)
    if csv_file is not None:
        online.write_statement_csv(csv_file, entries)
    if as_json:
        output.print_json(online.statement_json(summary, entries, disputes))
    else:
        online.show_statement(output.console(), summary, entries)
        if disputes:
            from services.cli.dispute_view import show_disputes

            show_disputes(output.console(), disputes, f"Disputes of {region} with a step in {month}")


@statement_app.command("year")
def statement_year(
    region: Annotated[str, typer.Argument(help="Region (as insured and as treating region).")],
    year: Annotated[str, typer.Argument(help="Calendar year YYYY.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """A region's year-end summary (年度清算): every closed month of the year, the totals, the open months."""
    answer = online.year_summary(config, region, year)
    if as_json:
        output.print_json(online.year_summary_json(answer))
    else:
        online.show_year_summary(output.console(), answer)


TreatingRegionArgument = Annotated[str, typer.Argument(help="Treating region whose agency pays its hospitals.")]
PayoutMonthArgument = Annotated[str, typer.Argument(help="Payout month YYYY-MM (Asia/Shanghai).")]


@statement_app.command("payouts")
def statement_payouts(
    region: TreatingRegionArgument,
    month: PayoutMonthArgument,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """The treating agency's payout list per hospital (拨付) for a month, and whether the month is closed (its list
    frozen) or open (the list so far)."""
    answer = online.payouts(config, region, month)
    if as_json:
        output.print_json(online.payouts_json(answer))
    else:
        online.show_payouts(output.console(), region, answer)


@payouts_app.command("close")
def payouts_close(
    region: TreatingRegionArgument,
    month: PayoutMonthArgument,
    empty: Annotated[bool, typer.Option("--empty", help="Close it even though it has no payouts.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Close a payout month that is over at the region's treating agency: its payout list is frozen for good, and a
    settlement or cancel recorded later counts in the next open month. Months with payouts close in order; a month
    without payouts only with --empty. Closing twice changes nothing and shows the first result."""
    answer = online.close_payouts(config, region, month, allow_empty=empty)
    if as_json:
        output.print_json(online.payouts_json(answer))
    else:
        online.show_payouts(output.console(), region, answer)


@app.command("reconcile")
def reconcile(
    day: Annotated[str, typer.Argument(help="Day to reconcile, YYYY-MM-DD: the settlements made that day (the day "
                                            "the treating agency made each one, 3201's day).")],
    grace_s: Annotated[int, typer.Option("--grace", help="Seconds after which a pending settlement is taken as "
                                         "abandoned and reversed.", min=1)] = 60,
    by: Annotated[DayKey, typer.Option("--by", help="Which day of a settlement DAY is: its settlement day, or the "
                                       "day its stay was discharged (to look back at a day's stays).")]
        = DayKey.SETTLEMENT,
    as_json: JsonFlag = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Reconcile every pair of neighbours for a day (对账 3201/3202), repair what differs, show what was done.
    A day is the settlements made that day, with their later cancels and reversals. Exit code 1 when a
    difference is left that no rule could repair."""
    raise typer.Exit(reconcile_view.run(config, day, grace_s, as_json, by))


CertDirArgument = Annotated[Path, typer.Argument(help="The certificate directory (docs/security.md).")]
RolePathArgument = Annotated[str, typer.Argument(
    help="The identity's path: clearinghouse, agency/440100, hospital/H44010000001, operator/NAME, simulator/his.")]
DaysOption = Annotated[int, typer.Option("--days", min=1, max=3650, help="Days the certificates are valid.")]


@certs_app.command("init")
def certs_init(
    directory: CertDirArgument,
    operators: Annotated[list[str] | None, typer.Option("--operator", help="Another operator's name (repeat); operator/admin is always made.")] = None,
    days: DaysOption = 397,
    force: Annotated[bool, typer.Option("--force", help="A new CA and every certificate re-issued.")] = False,
) -> None:
    """Make the development CA and a certificate per party: the clearing house, the HIS simulator, every region's
    agency and every hospital of services/regions/regions.toml, operator/admin and the --operator names. Valid files are
    kept; a new CA (first run, or --force) re-issues every certificate."""
    from services.cli import certs_view

    certs_view.init(directory, operators or [], days, force)


@certs_app.command("issue")
def certs_issue(directory: CertDirArgument, role_path: RolePathArgument, days: DaysOption = 397) -> None:
    """Issue one party's certificate again (rotation): a running server presents it from its next connection."""
    from services.cli import certs_view

    certs_view.issue(directory, role_path, days)


@certs_app.command("revoke")
def certs_revoke(directory: CertDirArgument, role_path: RolePathArgument) -> None:
    """Put one party's current certificate on the deny list (revoked.txt), which running servers re-read."""
    from services.cli import certs_view

    certs_view.revoke(directory, role_path)


@certs_app.command("show")
def certs_show(directory: CertDirArgument) -> None:
    """List every certificate: identity, serial, expiry, whether it is revoked, and any problem with it."""
    from services.cli import certs_view

    certs_view.show(directory)


@audit_app.callback()
def audit_command(
    ctx: typer.Context,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", help="Treating region's catalogue CSV (the format `catalog import` takes).")] = None,
    kb: Annotated[Path | None, typer.Option(
        "--kb", help="Knowledge base CSV (知识库; `python -m services.datagen knowledge` writes one).")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="Rule library TOML (规则库; services/regions/audit_rules/).")] = None,
    member: Annotated[Path | None, typer.Option(
        "--member", help="Member JSON as for `quote`, plus \"sex\" (M/F) and \"birth_date\".")] = None,
    bill: Annotated[Path | None, typer.Option("--bill", help="The bill JSON, as for `quote`.")] = None,
    history: Annotated[Path | None, typer.Option(
        "--history", help="The member's other live stays: a JSON list of {settlement_id, admitted_on, "
                          "discharged_on, diagnoses}. Default: none.")] = None,
) -> None:
    """Audit one stay offline (SPEC §12.4): print the findings as JSON; persists nothing. With a subcommand
    (`show`), the operator audit log instead."""
    given = {"--catalog": catalog, "--kb": kb, "--rules": rules, "--member": member, "--bill": bill,
             "--history": history}
    if ctx.invoked_subcommand is not None:
        stray = [name for name, value in given.items() if value is not None]
        if stray:
            raise offline.InputError(stray[0], f"belongs to the offline audit, not to `audit {ctx.invoked_subcommand}`")
        return
    for name, value in given.items():
        if value is None and name != "--history":
            raise offline.InputError(name, "is required for the offline audit (or give a subcommand, e.g. show)")
    from services.cli import smart_audit_offline

    output.print_json(smart_audit_offline.audit_files(catalog, kb, rules, member, bill, history))


@drg_app.command("weights")
def drg_weights(
    region: Annotated[str, typer.Argument(help="The treating region whose settled stays are the history.")],
    from_history: Annotated[bool, typer.Option(
        "--from-history", help="Compute the weights from the region's settled stays (the only source so far).")] = False,
    year: Annotated[str | None, typer.Option(
        "--year", help="The year YYYY whose payout months' stays are the history; default: this year.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the weights table to this CSV file.")] = None,
) -> None:
    """The region's DRG weights (病组权重, 基准点数) from its own settled stays: RW, base points, cases, average cost
    and whether a small group took its ADRG's figures; plus how many stays grouped ("0000" by reason)."""
    from services.cli import payment_view
    from services.common.clock import shanghai_today

    if not from_history:
        raise offline.InputError("--from-history", "is required: the weights come from the region's settled stays")
    result = payment_view.weights_from_history(config, region, year or str(shanghai_today().year))
    if csv_file is not None:
        payment_view.write_weights_csv(csv_file, result)
    if as_json:
        output.print_json(payment_view.weights_json(result))
    else:
        payment_view.show_weights(output.console(), result)


@payment_app.command("month")
def payment_month(
    region: TreatingRegionArgument,
    month: Annotated[str, typer.Argument(help="Payout month YYYY-MM (closed): the stays settled at the region's hospitals in it.")],
    weights_year: Annotated[str | None, typer.Option(
        "--weights-year", help="Whose settled stays give the DRG weights (YYYY); default: the month's year. Frozen "
                               "with the payment year's first posted month.")] = None,
    special_review: Annotated[list[str] | None, typer.Option(
        "--special-review", help="A settlement id chosen for 特病单议 (paid by item); repeat for more.")] = None,
    post: Annotated[bool, typer.Option(
        "--post", help="Post it: the ledger transfers to the hospitals; a posted month never changes.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the per-hospital list to this CSV file.")] = None,
) -> None:
    """A month's payment (月度预拨) of the region's hospitals, computed by its treating agency: per hospital its
    cases by method, points, advance, 调剂金, by-item, 单病种, 总额预付 and visit money; and the cross-region stays'
    gain or loss. Without --post a preview (nothing is written); with it, posted once."""
    from services.cli import payment_view

    request = payment_view.month_request(region, month, weights_year, special_review or [], post)
    answer = payment_view.close_month(config, region, request)
    if csv_file is not None:
        payment_view.write_month_csv(csv_file, answer)
    if as_json:
        output.print_json(payment_view.month_json(region, answer))
    else:
        payment_view.show_month(output.console(), region, answer)


@payment_app.command("year")
def payment_year(
    region: TreatingRegionArgument,
    year: Annotated[str, typer.Argument(help="Payment year YYYY: every payout month closed, every payment month posted.")],
    post: Annotated[bool, typer.Option(
        "--post", help="Post the year end: the settlements (negative: clawbacks) and the 调剂金 released.")] = False,
    chart: Annotated[Path | None, typer.Option(
        "--chart", help="Also draw the points, cost and payment per hospital to this PNG file.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the per-hospital list to this CSV file.")] = None,
) -> None:
    """The year-end clearing (年终清算) of the region's hospitals, computed by its treating agency: the point value,
    each hospital's payment, 结余留用/超支分担 and settlement against its advances (negative: 追回). Without --post
    a preview; on an unfinished year a year-to-date preview against the budget × months posted ÷ 12."""
    from services.cli import payment_view

    if chart is not None and chart.suffix.lower() != ".png":
        raise offline.InputError("--chart", "must name a .png file")
    answer = payment_view.close_year(config, region, year, post)
    if csv_file is not None:
        payment_view.write_year_csv(csv_file, answer)
    if chart is not None:
        payment_view.write_year_chart(chart, region, answer)
    if as_json:
        output.print_json(payment_view.year_json(region, answer))
    else:
        payment_view.show_year(output.console(), region, answer)


@payment_app.command("validate")
def payment_validate(
    files: Annotated[list[Path], typer.Argument(help="Hospital-payment TOML files (services/regions/payment/).")],
) -> None:
    """Parse regions' [hospital_payment] sections; show each one's budget, advance terms and switches."""
    from services.cli import payment_view

    payment_view.show_payment_files(output.console(), payment_view.load_payment_files(files))


@rules_app.command("validate")
def rules_validate(
    files: Annotated[list[Path], typer.Argument(help="Rule-library TOML files (one per region).")],
) -> None:
    """Parse rule libraries; show each one's version and the nine rules' settings."""
    from services.cli import smart_audit_offline

    smart_audit_offline.show_rule_libraries(output.console(), smart_audit_offline.load_rule_libraries(files))


@audit_app.command("show")
def audit_show(
    since: Annotated[str | None, typer.Option(
        "--since", help="Only calls from this day (YYYY-MM-DD) or instant (ISO-8601; Asia/Shanghai without an offset).")] = None,
    who: Annotated[str | None, typer.Option("--who", help="Only this operator's calls: NAME or operator/NAME.")] = None,
    party: Annotated[str | None, typer.Option(
        "--party", help="Only this server's log: clearinghouse, region:CODE (its treating and insured agency) or his.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Who did what, when, with which request and outcome: every party's operator audit log, merged by time."""
    from services.cli import audit_view

    events = audit_view.read_log(config, since, who, party)
    if as_json:
        output.print_json([audit_view.event_json(event) for event in events])
    else:
        audit_view.show(output.console(), events)


@audit_app.command("month")
def audit_month(
    region: Annotated[str, typer.Argument(help="The insured region whose members' stays are audited.")],
    month: Annotated[str, typer.Argument(help="Discharge month YYYY-MM.")],
    raise_disputes: Annotated[bool, typer.Option(
        "--raise", help="Raise a dispute per (settlement, rule) for the definite findings whose action is `dispute` "
                        "(idempotent: a second run raises nothing new).")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """事后 audit of an insured region's members' settled cross-region stays of a month, under the region's rule
    library (docs/smart-audit.md): the findings by rule, and with --raise the disputes raised."""
    from services.cli import dispute_view

    result = dispute_view.audit_month(config, region, month, raise_disputes)
    if as_json:
        output.print_json(dispute_view.month_audit_json(result))
    else:
        dispute_view.show_month_audit(output.console(), result)


DisputeIdArgument = Annotated[str, typer.Argument(help="The dispute's id (its dispute key, a UUID).")]


@dispute_app.command("raise")
def dispute_raise(
    region: Annotated[str, typer.Argument(help="The insured region raising it (the settlement's).")],
    settlement_id: Annotated[str, typer.Argument(help="The settled cross-region settlement disputed.")],
    amount_fen: Annotated[int, typer.Option("--amount-fen", help="The disputed amount, fen (1 to the fund pay "
                                                                 "left by earlier disputes).")],
    rule: Annotated[str | None, typer.Option("--rule", help="The 事后 finding's rule id, e.g. AUD-DAYQTY.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required without --rule).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Dispute key (UUID) to make a retry idempotent; "
                                                          "default: a new one.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Raise a dispute (拒付) on a settlement within 3 clearing months of its month."""
    from services.cli import dispute_view

    dispute = dispute_view.raise_dispute(config, region, settlement_id, amount_fen, rule, reason, key)
    show_one(dispute, as_json)


@dispute_app.command("answer")
def dispute_answer(
    dispute_id: DisputeIdArgument,
    accept: Annotated[bool, typer.Option("--accept", help="Accept: the hospital's payout falls (扣款).")] = False,
    appeal: Annotated[str | None, typer.Option("--appeal", help="Appeal (申诉) with this text.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """The treating agency's answer within 1 clearing month of the raise: --accept, or --appeal TEXT."""
    from services.cli import dispute_view

    show_one(dispute_view.answer_dispute(config, dispute_id, accept, appeal), as_json)


@dispute_app.command("decide")
def dispute_decide(
    dispute_id: DisputeIdArgument,
    decision: Annotated[str, typer.Argument(help="upheld (the adjustment is posted) or rejected.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """The clearing house's decision on an appealed dispute."""
    from services.cli import dispute_view

    show_one(dispute_view.decide_dispute(config, dispute_id, decision), as_json)


@dispute_app.command("list")
def dispute_list(
    region: Annotated[str | None, typer.Option("--region", help="Only disputes this region is party to.")] = None,
    month: Annotated[str | None, typer.Option("--month", help="Only settlements of this clearing month.")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonFlag = False,
) -> None:
    """Disputes in the order they were raised (lapses due are applied first)."""
    from services.cli import dispute_view

    items = dispute_view.list_disputes(config, region, month)
    if as_json:
        output.print_json([dispute_view.dispute_json(item) for item in items])
    else:
        dispute_view.show_disputes(output.console(), items)


@dispute_app.command("show")
def dispute_show(dispute_id: DisputeIdArgument, config: ConfigOption = DEFAULT_CONFIG, as_json: JsonFlag = False) -> None:
    """One dispute with every step: who and when."""
    from services.cli import dispute_view

    show_one(dispute_view.get_dispute(config, dispute_id), as_json)


def show_one(dispute: Any, as_json: bool) -> None:  # noqa: ANN401 - a clearing_house_pb2.Dispute
    from services.cli import dispute_view

    if as_json:
        output.print_json(dispute_view.dispute_json(dispute))
    else:
        dispute_view.show_dispute(output.console(), dispute)


def main() -> None:
    """Console-script entry point: run the app. Every operator error is one `error: …` line on stderr, exit 2: a
    `DomainError` from any command, and typer's usage errors (a missing argument, an unknown option, a value that
    is not an int), which typer itself would print as a boxed block. `--help` and a bare group (its help) stay."""
    # typer vendors click as `typer._click`; its exceptions are only importable from there.
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        result = app(prog_name="clearing-admin", standalone_mode=False)
    except DomainError as error:
        output.fail(error.message)
    except NoArgsIsHelpError:  # `clearing-admin settlement`: typer has printed its help (stdout), exit 2 as before
        raise SystemExit(output.EXIT_OPERATOR_ERROR) from None
    except UsageError as error:
        hint = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
        output.fail(f"{error.format_message().rstrip()}{hint}")
    except ClickException as error:
        output.fail(error.format_message())
    except typer.Abort:
        output.fail("aborted")
    # Without standalone mode, `typer.Exit(code)` (and `--help`'s exit) comes back as the return value.
    if isinstance(result, int) and result:
        raise SystemExit(result)
