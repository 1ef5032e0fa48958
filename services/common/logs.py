"""Structured logs (structlog): JSON lines in services, readable lines on a terminal (SPEC §10).

`mask_personal_data` runs on every event: ID numbers become `4301**********1234` wherever they
appear, and values under personal keys (name, id_number) are masked whole.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

ID_NUMBER_PATTERN = re.compile(r"(?<!\d)(\d{4})\d{10}(\d{3}[\dXx])(?![\dXx])")
PERSONAL_KEYS = frozenset({"name", "patient_name", "id_number", "id_no", "certno", "psn_name"})


def mask_id_number(text: str) -> str:
    """Mask every 18-character ID number in `text`, keeping the first and last four characters."""
    return ID_NUMBER_PATTERN.sub(lambda match: f"{match.group(1)}{'*' * 10}{match.group(2)}", text)


def mask_name(name: str) -> str:
    """Keep the first character of a name (张**)."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def mask_value(key: str, value: Any) -> Any:
    if key in PERSONAL_KEYS and isinstance(value, str):
        return mask_id_number(value) if any(ch.isdigit() for ch in value) else mask_name(value)
    if isinstance(value, str):
        return mask_id_number(value)
    if isinstance(value, dict):
        return {inner: mask_value(inner, item) for inner, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value("", item) for item in value]
    return value


def mask_personal_data(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no unmasked ID number or name ever reaches a log line.

    Inside a rendered traceback `name` is a function name, not a person's: there only ID numbers
    are masked, so tracebacks stay readable.
    """
    return {key: mask_value("", value) if key == "exception" else mask_value(key, value)
            for key, value in event_dict.items()}


def configure(json_output: bool = True, level: int = logging.INFO) -> None:
    """Configure structlog once per process; services use JSON, the CLI a console renderer on a TTY."""
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json_output else \
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks without frame locals (they can hold requests with ID numbers), rendered
            # before masking so the traceback text is masked too.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
            if json_output else structlog.dev.set_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
