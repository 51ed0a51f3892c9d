"""An alert goes once per incident to every ARCADIA_ALERT_URLS URL (a real SMTP server and a
real webhook here), scrubbed of credentials; a channel that is down never breaks the caller;
a URL is validated with the other settings and never echoed."""

import os
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from arcadia_pipeline.alerts.notify import (
    RUN_FAILED,
    alert,
    first_line,
    incident_key,
    incident_text,
    scrub,
)
from arcadia_pipeline.definitions import defs as load_definitions
from arcadia_pipeline.settings import SettingsError, load_settings
from arcadia_pipeline_tests.alerts.conftest import free_port

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"


def recorded(engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT incident, kind, subject, delivered FROM metering.alerts ORDER BY 1")
        ).all()


def test_alert_urls_are_split_on_whitespace_and_commas_but_not_inside_a_url():
    mailto = "mailto://smtp.example.com?from=a@example.com&to=b@example.com,c@example.com"
    loaded = load_settings({"ARCADIA_ALERT_URLS": f" {SLACK},{mailto}\n json://hook.local/x, "})
    assert loaded.alert_urls == (SLACK, mailto, "json://hook.local/x")
    assert load_settings({}).alert_urls == ()
    assert load_settings({"ARCADIA_ALERT_URLS": "  "}).alert_urls == ()


def test_a_url_apprise_cannot_load_is_named_by_position_and_scheme_never_echoed():
    with pytest.raises(SettingsError) as raised:
        load_settings(
            {
                "ARCADIA_ALERT_URLS": f"{SLACK} nosuch://ops:hunter2@pager.local slack://short",
                "ARCADIA_CATCHUP_LOOKBACK_DAYS": "0",
            }
        )
    message = str(raised.value)
    assert "ARCADIA_CATCHUP_LOOKBACK_DAYS" in message  # one message, every bad variable
    assert "ARCADIA_ALERT_URLS holds URL 2 (nosuch://), URL 3 (slack://)" in message
    assert "hunter2" not in message and "pager.local" not in message and "short" not in message


def test_a_bad_alert_url_stops_the_code_location(monkeypatch):
    monkeypatch.setenv("ARCADIA_ALERT_URLS", "json://ok.local/x not-a-url")
    with pytest.raises(SettingsError, match=r"ARCADIA_ALERT_URLS holds URL 2 \(no scheme\)"):
        load_definitions()


def test_scrub_removes_connection_urls_credentials_and_the_environment_s_secrets(monkeypatch):
    monkeypatch.setenv("ARCADIA_SOURCE_DATABASE_URL", "postgresql://app:Sup3rSecret@app-db/arc")
    message = (
        "connection to postgresql+psycopg2://metering:pw12345@warehouse:5432/arcadia failed; "
        "dsn host=db password=hunter22 user=x; token: abc123; with Sup3rSecret in it; "
        f"{SLACK}; see https://docs.dagster.io/guides and https://hook.local/x?sig=zzz"
    )
    scrubbed = scrub(message)
    for secret in ("pw12345", "hunter22", "abc123", "Sup3rSecret", "TIiajkdnlazk", "sig=zzz"):
        assert secret not in scrubbed
    assert "postgresql+psycopg2://[hidden] failed" in scrubbed
    assert "password=[hidden]" in scrubbed
    assert "https://docs.dagster.io/guides" in scrubbed  # a plain link stays
    database_url = os.environ["ARCADIA_DATABASE_URL"]
    assert database_url not in scrub(f"engine {database_url} refused")


def test_first_line_and_body():
    assert first_line("\n  usage_records failed on 2025-03-04: boom  \nTraceback …") == (
        "usage_records failed on 2025-03-04: boom"
    )
    assert first_line(None) == ""
    assert len(first_line("x" * 2000)) == 500
    assert incident_text({"job": "j", "asset": None, "days": "2025-03-04"}) == (
        "job: j\ndays: 2025-03-04"
    )
    long = "future:" + "x" * 1000
    assert len(incident_key(long)) <= 400 and incident_key(long) != incident_key(long + "y")


def test_an_incident_is_sent_once_to_every_url(engine, channels):
    body = incident_text(
        {
            "job": "daily_metering_job",
            "asset": "usage_records",
            "days": "2025-03-04",
            "error": "usage_records failed on 2025-03-04",
        }
    )
    with engine.begin() as connection:
        assert alert(connection, "run:abc", RUN_FAILED, "[arcadia] run failed", body) is True
    with engine.begin() as connection:  # a retried tick
        assert alert(connection, "run:abc", RUN_FAILED, "[arcadia] run failed", body) is False

    [mail] = channels.emails
    assert "[arcadia] run failed" in mail and "usage_records failed on 2025-03-04" in mail
    [post] = channels.posts
    assert post["title"] == "[arcadia] run failed"
    assert post["type"] == "failure"
    assert "days: 2025-03-04" in post["message"]
    assert recorded(engine) == [("run:abc", RUN_FAILED, "[arcadia] run failed", True)]


def test_a_channel_that_is_down_is_recorded_undelivered_and_never_raises(
    engine, channels, monkeypatch
):
    nobody = free_port()  # nothing listens there
    monkeypatch.setenv("ARCADIA_ALERT_URLS", f"{channels.urls} json://127.0.0.1:{nobody}/x")
    with engine.begin() as connection:
        assert alert(connection, "run:down", RUN_FAILED, "subject", "body") is True
    assert len(channels.posts) == 1 and len(channels.emails) == 1  # the others still got it
    assert recorded(engine) == [("run:down", RUN_FAILED, "subject", False)]


def test_no_alert_url_sends_nothing_but_records_the_incident(engine, monkeypatch):
    monkeypatch.delenv("ARCADIA_ALERT_URLS", raising=False)
    with engine.begin() as connection:
        assert alert(connection, "run:quiet", RUN_FAILED, "subject", "body") is True
    assert recorded(engine) == [("run:quiet", RUN_FAILED, "subject", False)]


def test_what_is_sent_never_holds_a_password_or_a_connection_url(engine, channels):
    database_url = os.environ["ARCADIA_DATABASE_URL"]
    leaky = f"could not connect: {database_url}\npassword=letmein"
    with engine.begin() as connection:
        alert(connection, "run:leak", RUN_FAILED, f"run failed: {leaky}", leaky)
    received = channels.everything()
    assert "could not connect" in received
    assert database_url not in received and "letmein" not in received
    password = urlsplit(database_url).password
    assert not password or password not in received
    assert "could not connect: [hidden]" in received
