"""`python -m services.loadtest [flags]`: the load harness alone (`make bench` runs it with the month close)."""

from __future__ import annotations

import asyncio
import os
import sys

from services.loadtest.run import run
from services.loadtest.settings import SettingsError, parse_settings


def main() -> None:
    try:
        settings = parse_settings(sys.argv[1:], os.environ)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
