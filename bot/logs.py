"""The bot process's logging, with every secret redacted from every record at every level.

At DEBUG discord.py logs each HTTP route it calls and each gateway event it receives. Those carry
credentials: an interaction's token is in its callback and webhook URLs (``/interactions/{id}/{token}/
callback``, ``/webhooks/{application id}/{token}/...``) and in the ``INTERACTION_CREATE`` payload
(``'token': '...'``); the bot token travels as ``Authorization: Bot <token>``. Anyone who reads such a log
could answer or edit as the bot for 15 minutes (interaction tokens) or for good (the bot token).

``configure_logging`` (called by ``tutor bot``, the entry point) sets up discord.py's logging on the root
logger and then ``install_redaction`` puts a ``RedactSecrets`` filter on every handler of the root and
``discord`` loggers. The filter renders the record's message with its arguments, redacts it, and stores
the result (so a handler or formatter never sees the raw arguments); it also pre-renders and redacts the
traceback and stack. The handlers' formatters are wrapped as well, because some formatters (discord.py's
colour formatter, used on a TTY and in Docker) render the traceback again from ``exc_info``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# (prefix kept, secret replaced) for each shape a credential takes in discord.py's and aiohttp's logs.
_PATTERNS = (
    # interaction callbacks and interaction webhooks: the segment after the id is the token
    re.compile(r"(/(?:interactions|webhooks)/\d+/)([^/\s?#'\"<>]+)"),
    # an Authorization header, however it is printed (dict repr, JSON, "Authorization: Bot ...")
    re.compile(r"(\bauthorization['\"]?\s*[:=]\s*['\"]?)([^'\"\n,}]+)", re.IGNORECASE),
    # "Bot <token>" / "Bearer <token>" anywhere else
    re.compile(r"(\b(?:Bot|Bearer)\s+)([\w.~+/=-]{8,})"),
    # token fields in payloads, dict reprs, query strings: 'token': '...', "token":"...", token=...
    re.compile(
        r"(['\"]?\b(?:token|access_token|refresh_token|client_secret)['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}&]+)",
        re.IGNORECASE,
    ),
    # the shape of a Discord bot token (base64 user id . timestamp . HMAC), wherever it appears
    re.compile(r"()\b[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,}"),
)


class RedactSecrets(logging.Filter):
    """Redacts interaction, webhook and bot tokens (and the given literal ``secrets``) from each record.

    Never drops a record. Installed on handlers, so it sees records propagated from every logger.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str | None) -> None:
        """Also redact this exact string (the bot token from the settings, say)."""
        if secret and secret.strip():
            self.secrets.add(secret.strip())

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, redacted, rather than fail
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter and redacts what it produces (tracebacks it renders itself included)."""

    def __init__(self, inner: logging.Formatter | None, redactor: RedactSecrets) -> None:
        super().__init__()
        self.inner = inner if inner is not None else logging.Formatter()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(self.inner.format(record))


def install_redaction(secrets: Iterable[str] = (), loggers: Iterable[str] = ("", "discord")) -> RedactSecrets:
    """Put one ``RedactSecrets`` on every handler of ``loggers`` (root and discord's) and wrap their
    formatters; idempotent (a handler keeps the filter it already has, which learns the new secrets)."""
    redactor = RedactSecrets(secrets)
    for name in loggers:
        for handler in logging.getLogger(name or None).handlers:
            existing = next((f for f in handler.filters if isinstance(f, RedactSecrets)), None)
            if existing is None:
                handler.addFilter(redactor)
            else:
                existing.secrets |= redactor.secrets
            if not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter, existing or redactor))
    return redactor


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, handler: logging.Handler | None = None
) -> RedactSecrets:
    """discord.py's logging setup on the root logger at ``level`` (a name such as "DEBUG"), redacted.

    Colours only when the handler writes to a terminal (discord.py also colours whenever it runs in
    Docker, which put escape codes in piped and collected logs), and never with ``NO_COLOR`` set.
    """
    import discord

    handler = handler if handler is not None else logging.StreamHandler()
    numeric = logging.getLevelNamesMapping().get(level.strip().upper(), logging.INFO)
    quiet_library_loggers(numeric)
    discord.utils.setup_logging(
        handler=handler,
        formatter=discord.utils.MISSING if _to_terminal(handler) else PLAIN_FORMATTER,
        level=numeric,
        root=True,
    )
    return install_redaction(secrets)


# discord.py's format without colour (what it uses itself off a terminal, outside Docker).
PLAIN_FORMATTER = logging.Formatter(
    "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
)

# Libraries whose INFO lines are start-up noise: faiss's loader tries its AVX512 and AVX2 builds first and
# logs a ModuleNotFoundError for each one the wheel lacks before loading the generic build.
NOISY_AT_INFO = ("faiss.loader",)


def quiet_library_loggers(level: int) -> None:
    """Those libraries' INFO lines shown at DEBUG only (their warnings and errors always)."""
    for name in NOISY_AT_INFO:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)


def _to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    try:
        return bool(stream is not None and stream.isatty()) and not os.environ.get("NO_COLOR")
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
