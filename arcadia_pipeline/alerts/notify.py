"""Operators are told: each incident once, to every URL of ARCADIA_ALERT_URLS, through Apprise
(email, Slack, Teams, PagerDuty, a JSON webhook, …: one URL per channel).

An incident is a string naming one thing that went wrong or needs telling (`run:<run_id>`,
`check:<asset>:<check>:<days>:<run>`, `future:<row>`, `reconcile:<run_id>`,
`close:<YYYY-MM>`, `spend:<deployment>:<threshold>:<YYYY-MM>`). `alert` records it in
`metering.alerts` first (INSERT … ON CONFLICT DO NOTHING) and sends it only when this call
recorded it: a sensor tick that is retried, or two ticks racing, send it once. What is sent
is scrubbed first: no URL that could carry credentials, no `password=…`, never a value of the
database or alert URL variables.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert

from arcadia_pipeline import utc
from arcadia_pipeline.db.schema import alerts
from arcadia_pipeline.settings import settings

# Kinds of incident (metering.alerts.kind); failures are sent as Apprise "failure"
# notifications (red in Slack and Teams), the others as warnings.
RUN_FAILED = "run_failed"
CHECK_FAILED = "check_failed"
FUTURE_RECORDED_AT = "future_recorded_at"
RECONCILIATION = "reconciliation"
MISSED_CLOSE = "missed_close"
SPEND_THRESHOLD = "spend_threshold"
FAILURES = frozenset({RUN_FAILED, CHECK_FAILED, MISSED_CLOSE})

# The variables whose values (connection URLs, alert URLs) never leave in an alert.
SECRET_VARIABLES = (
    "ARCADIA_DATABASE_URL",
    "ARCADIA_SOURCE_DATABASE_URL",
    "ARCADIA_ADMIN_DATABASE_URL",
    "DAGSTER_POSTGRES_URL",
    "ARCADIA_ALERT_URLS",
)
# A URL: scheme://… up to whitespace, a quote or a bracket.
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://[^\s'\"<>()\[\]{}]+")
# `password=…`, `token: …` and the like (libpq key=value strings, query strings, messages).
_SECRET_PAIR = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&'\"]+)"
)
HIDDEN = "[hidden]"
MAX_INCIDENT = 400  # characters of an incident kept as its key (a hash keeps it unique)
MAX_LINE = 500  # characters of an error's first line


def _hide_url(match: re.Match) -> str:
    """A plain http(s) link with no user and no query stays (a docs link); any other URL
    (a connection URL, an Apprise URL, anything with user:password@ or a ?query) is hidden
    but for its scheme."""
    url, scheme = match[0], match[1].lower()
    parts = urlsplit(url) if scheme in ("http", "https") else None
    if parts is not None and "@" not in parts.netloc and not parts.query:
        return url
    return f"{scheme}://{HIDDEN}"


def _secret_values() -> list[str]:
    """The values of SECRET_VARIABLES and the passwords in them, longest first."""
    values: set[str] = set()
    for name in SECRET_VARIABLES:
        for value in re.split(r"[\s,]+", os.environ.get(name, "")):
            if len(value) >= 4:
                values.add(value)
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password and len(password) >= 6:
                    values.add(password)
    return sorted(values, key=len, reverse=True)


def scrub(text: str) -> str:
    """`text` without anything that may be a credential: the values of the database and
    alert URL variables (and their passwords), every URL but a plain http(s) link, and
    `password=…`-style pairs (the key stays, the value becomes [hidden])."""
    for value in _secret_values():
        text = text.replace(value, HIDDEN)
    text = _URL.sub(_hide_url, text)
    return _SECRET_PAIR.sub(lambda m: f"{m[1]}{m[2]}{HIDDEN}", text)


def first_line(text: str | None) -> str:
    """The first non-blank line of an error message, stripped, at most MAX_LINE characters
    ('' for none)."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def incident_text(fields: Mapping[str, str | None]) -> str:
    """An alert's body: one `name: value` line per field that has a value, in order
    (job, asset, days, error, …)."""
    return "\n".join(f"{name}: {value}" for name, value in fields.items() if value)


def incident_key(incident: str) -> str:
    """`incident` as its key in metering.alerts: itself, or when longer than MAX_INCIDENT its
    start and a hash of the whole (two long incidents differing at the end stay two)."""
    if len(incident) <= MAX_INCIDENT:
        return incident
    digest = hashlib.sha256(incident.encode()).hexdigest()[:16]
    return f"{incident[: MAX_INCIDENT - 18]}…#{digest}"


@contextmanager
def _apprise_silenced(apprise) -> Iterator[None]:
    """Apprise logs what it could not reach or parse, URL and all: not from here."""
    logger = apprise.logger
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def send(subject: str, body: str, kind: str, urls: tuple[str, ...]) -> bool:
    """Send one notification to every Apprise URL of `urls`: True when each took it, False
    when any did not (unreachable, refused) or there is none. Never raises."""
    if not urls:
        return False
    import apprise  # its plugins load on first use

    asset = apprise.AppriseAsset(app_id="Arcadia metering", secure_logging=True)
    notifier = apprise.Apprise(asset=asset)
    failure = kind in FAILURES
    notify_type = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.WARNING
    with _apprise_silenced(apprise):
        try:
            added = all(notifier.add(url) for url in urls)
            sent = notifier.notify(
                body=body,
                title=subject,
                notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception:  # an alert channel never breaks the pipeline
            return False
    return bool(added and sent)


def alert(connection: Connection, incident: str, kind: str, subject: str, body: str) -> bool:
    """Tell the operators of `incident` once: record it in metering.alerts (kind, subject,
    sent_at, delivered) and, only if this call recorded it, send `subject` and `body`
    (scrubbed) to every ARCADIA_ALERT_URLS URL.

    Returns True when this call recorded the incident (and sent it, or found no URL to send
    it to; `delivered` says whether every URL took it), False when it was recorded before
    (nothing is sent). The row is part of the caller's transaction: use a transaction of its
    own (`with engine.begin() as connection`) so that it commits at once. A channel that is
    down makes `delivered` false, never an exception; a database error raises as usual."""
    subject, body = scrub(subject), scrub(body)
    recorded = connection.execute(
        insert(alerts)
        .values(
            incident=incident_key(incident),
            kind=kind,
            subject=subject,
            sent_at=utc.now(),
            delivered=False,
        )
        .on_conflict_do_nothing(index_elements=[alerts.c.incident])
        .returning(alerts.c.incident)
    ).scalar()
    if recorded is None:
        return False
    if send(subject, body, kind, settings().alert_urls):
        connection.execute(
            update(alerts).where(alerts.c.incident == recorded).values(delivered=True)
        )
    return True
