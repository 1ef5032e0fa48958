"""The fault harness (issue 5): real service processes behind fault-injecting proxies, SIGKILLed and
restarted while the harness discharges patients as the hospitals' HIS, then every party's database
checked against what the HIS saw. Entry point: `harness.run`, or `clearing-admin simulate`."""
