"""structlog, configured once: JSON lines when stderr is not a terminal (or ``log_format =
"json"``), the console renderer otherwise; events below ``log_level`` cost one method call.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

import structlog

from riskgate.config import Settings, SettingsError

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_lock = threading.Lock()
_configured = False


def log_level(name: str) -> int:
    """``"info"`` -> ``logging.INFO``; an unknown name raises ``SettingsError``."""
    try:
        return _LEVELS[name.strip().lower()]
    except KeyError:
        raise SettingsError(
            f"log_level: expected one of debug, info, warning, error, critical, got {name!r}"
        ) from None


def use_json(settings: Settings, stream: TextIO) -> bool:
    if settings.log_format == "json":
        return True
    if settings.log_format == "console":
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, force: bool = False
) -> bool:
    """Configure structlog for the process. Only the first call (or one with ``force``)
    takes effect; returns whether this call configured it."""
    global _configured
    with _lock:
        if _configured and not force:
            return False
        out: Any = _StderrProxy() if stream is None else stream
        level = log_level(settings.log_level)
        renderer: Any
        if use_json(settings, out):
            renderer = structlog.processors.JSONRenderer()
            exc = structlog.processors.dict_tracebacks
        else:
            renderer = structlog.dev.ConsoleRenderer(colors=_isatty(out))
            exc = None
        processors: list[Any] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ]
        if exc is not None:
            processors.append(exc)
        processors += [_headline_first, renderer]
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(file=out),
            cache_logger_on_first_use=True,
        )
        _configured = True
        return True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _headline_first(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """timestamp, level and event first: easier to read, same JSON."""
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    head.update(event_dict)
    return head


class _StderrProxy:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return _isatty(sys.stderr)


def get_logger(name: str) -> Any:
    """A structlog logger carrying ``component=name``."""
    return structlog.get_logger(component=name)
