"""The load harness (`make bench`, issue 11): the full stack as real processes over mutual TLS under load, and in
the same run its floor, with every figure printed, written to `var/bench/latest.json` and appended to
`docs/benchmarks.md`.

Decisions (the reasons are in each module):

* **The HIS is the load generator** (`driver.py`, `fleet.py`): BENCH_DRIVERS processes of their own (2), each with
  many asyncio clients that call the treating agencies directly as hospitals, with the hospitals' certificates:
  Admit, UploadCharges in batches of 25, Settle, retried by request id. Not the HIS simulator's RunDischarges:
  only the caller sees each Settle's latency. The simulator process still runs, idle.
* **Realistic bills, generated before the clock starts** (`bills.py`): the HIS plan with 80 % cross-region stays
  over the 7 demo regions and every hospital; ~50 lines per bill (generated bills topped up with the in-stay lines
  of further bills of the same stay, since `generate_bill` averages 32); members and catalogues are the ones
  `enrol_all` registers; prepayments funded far beyond the run. Admissions fall in a month that began at least 45
  days ago, so every discharge is in the past.
* **Two phases, each measured for BENCH_DURATION_S** (12 s): the **fixed rate** — open loop, BENCH_RATE (200)
  discharges started per second whatever the stack answers, after BENCH_WARMUP_S (4 s) of the same, at most
  BENCH_IN_FLIGHT_MAX (160) at once; it reports the achieved rate, how many discharges offered in the window did
  not finish by its end (`behind`: the dropped ones, and those still running — a stack that keeps up has about
  rate × discharge latency of these), and late starts (the generator's own lag) — and
  **saturation** — closed loop, BENCH_CLIENTS (48) clients discharging back to back, after a 2 s ramp.
  A discharge counts when its Settle ends in the window; latency is Settle's, retries included, as the HIS sees it.
  Percentiles are nearest-rank (`stats.py`).
* **CPU and memory from /proc** (`procstat.py`): utime + stime of each stack process, of Postgres (postmaster and
  backends, exited ones included through the postmaster's cutime) and of each generator, at the window's start
  and end, per settlement completed in it; peak RSS is VmHWM over the whole run (Postgres: its largest process).
  Headline CPU is at saturation, headline latency at the fixed rate.
* **The floor, in the same run, on the same database server** (`floor.py`, `floor_rows.py`): after the stack is
  stopped, the same processes and hops over the same TLS with handlers that only make the downstream calls
  (*empty*), then the same writing the rows a discharge writes at each party, one raw asyncpg transaction per
  party per call (*rows*) — one set of processes, flipped between the modes by a file; each at saturation with
  the same clients, for BENCH_FLOOR_DURATION_S (6 s) after BENCH_FLOOR_WARMUP_S (2 s). `floor.settlements_per_s`
  is *rows*; the ratio is the stack over the floor.
* **Postgres's own counters** (`dbstat.py`): commits and rows inserted, updated and fetched per settlement, by
  party, in each window — what each party asks of the database, next to the floor's.
* **The core line** (`core.py`): the pure core's quotes per CPU second, run first, from one place that switches to
  `services/bench_core.py` when that lands.
* **The database is production-like**: a fresh embedded Postgres with its default (crash-safe) settings; the smoke
  test borrows the test session's instead (`run(database=…)`).
* **Defaults fit `make bench` in under 5 minutes** on 2 cores, with the 1 M month close after it (3–5 minutes
  measured, depending on what else the machine runs: core line 6–15 s, stack up and seeded 21–35 s, phases
  2 × 17 s, floor 25 s; the close alone 65 s on a quiet machine, 145 s at a load average of 10). 100 members per
  region (enrolling costs seconds per hundred): at today's ~25 settlements/s that is about 2 stays per member in a
  run; a stack ten times faster gives each ~20 stays (~200,000 yuan) in one year, and members reaching their
  annual caps would settle with less fund pay: raise BENCH_MEMBERS then.
"""
