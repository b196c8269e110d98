"""Issue 9: one office clock. The office's day runs from 00:00 to 24:00 Beijing time whatever the
host's zone or hour; the auditor's filters, charts and export count in it and say so.

The trail's times come from the real append path, which never lets time run backwards (each
append takes the later of now and the chain head's time): a trail whose last entry was written
at 20:00 UTC gives the next entries that time, 04:00 the next morning in Beijing, at whatever
hour the test runs. Tests that use the present moment (the charts) compute what they expect from
each entry's own UTC time, so they hold at any hour and catch UTC days between 16:00 and 24:00 UTC
(the suite is also run under faketime at 20:30 and 03:00 UTC).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from govern.models import AuditHead
from tests.conftest import as_operator
from tests.pages import Reader, text

# 20:00 UTC on 24 November 2099 is 04:00 on 25 November 2099 in Beijing.
LATE_UTC = "2099-11-24T20:00:00.000000Z"
BEIJING_DAY = "2099-11-25"


def test_the_office_day_runs_midnight_to_midnight_in_beijing(runtime, clock):
    assert clock.name == "Asia/Shanghai"
    day = date(2026, 11, 25)
    assert clock.start_of_day(day) == datetime(2026, 11, 24, 16, tzinfo=UTC)
    assert clock.end_of_day(day) == datetime(2026, 11, 25, 16, tzinfo=UTC)
    assert clock.day_of(datetime(2026, 11, 24, 20, tzinfo=UTC)) == day
    assert clock.day_of(datetime(2026, 11, 24, 15, 59, 59, tzinfo=UTC)) == day - timedelta(days=1)
    assert clock.last_day(clock.end_of_day(day)) == day
    # A unit of work's "today" is the office clock's, not the host's calendar.
    before = clock.day_of(datetime.now(UTC))
    with as_operator(runtime) as ctx:
        today = ctx.today()
    assert today in (before, clock.day_of(datetime.now(UTC)))


def _trail_clock_reads(runtime, at: str) -> None:
    """The trail's last entry was written at ``at``: the next appends take that time."""
    with runtime.engine.begin() as conn:
        conn.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(at=at))


def _created(office, **filters) -> list[dict]:
    query = {"action": "agreement:create", **filters}
    response = office.get("/api/v1/audit", "audit", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def test_since_and_until_take_office_days(office, runtime):
    office.login("audit")
    _trail_clock_reads(runtime, LATE_UTC)
    office.agreement(title="made at 04:00 in Beijing")
    made = office.audit_entries(action="agreement:create")
    assert [e["at"] for e in made] == [LATE_UTC]
    # Office days: the entry is on 25 November (Beijing), not on 24 November (its UTC date).
    assert len(_created(office, since=BEIJING_DAY)) == 1
    assert _created(office, until="2099-11-24") == []
    assert len(_created(office, until=BEIJING_DAY)) == 1
    assert _created(office, since="2099-11-26") == []
    # A time without an offset is the office's wall clock; with one, it is taken as it says.
    assert len(_created(office, since=f"{BEIJING_DAY}T03:59:59")) == 1
    assert _created(office, since=f"{BEIJING_DAY}T04:00:01") == []
    assert len(_created(office, since="2099-11-24T20:00:00Z")) == 1
    assert _created(office, since="2099-11-24T20:00:01+00:00") == []


def test_dates_beyond_the_calendar_are_refused_not_a_server_error(office):
    for bad in ("until=9999-12-31", "since=0001-01-01", "since=0001-01-01T00:00:00"):
        response = office.get(f"/api/v1/audit?{bad}", "audit")
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["field"] == bad.split("=")[0]


def test_export_gives_the_office_time_with_its_offset_beside_utc(office, runtime):
    office.login("audit")
    _trail_clock_reads(runtime, LATE_UTC)
    office.agreement(title="made at 04:00 in Beijing")
    jsonl = office.get(
        f"/api/v1/audit/export?format=jsonl&action=agreement:create&since={BEIJING_DAY}", "audit"
    )
    [line] = [json.loads(x) for x in jsonl.get_data(as_text=True).splitlines()]
    assert line["at"] == LATE_UTC
    assert line["office_at"] == "2099-11-25T04:00:00+08:00"
    assert line["office_zone"] == "Asia/Shanghai"
    exported = office.get(
        f"/api/v1/audit/export?format=csv&action=agreement:create&since={BEIJING_DAY}", "audit"
    )
    [row] = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert (row["at"], row["office_at"], row["office_zone"]) == (
        LATE_UTC,
        "2099-11-25T04:00:00+08:00",
        "Asia/Shanghai",
    )


def test_the_trail_page_filters_by_office_day_and_labels_the_zone(office, app, runtime):
    auditor = Reader(app).login("audit")
    _trail_clock_reads(runtime, LATE_UTC)
    office.agreement(title="made at 04:00 in Beijing")
    page = text(auditor.get(f"/audit?action=agreement:create&since={BEIJING_DAY}"))
    assert "Nov 25, 2099, 4:00:00\u202fAM GMT+08:00" in page or (
        "Nov 25, 2099, 4:00:00 AM GMT+08:00" in page
    )
    assert "Asia/Shanghai" in page
    # The next office day has no entry (the zone's note names GMT+08:00 on every page).
    none = text(auditor.get("/audit?action=agreement:create&since=2099-11-26"))
    assert "No entry matches." in none and 'class="trail"' not in none


def test_charts_count_denials_on_the_office_days(office, app, clock):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    for _ in range(3):
        assert office.get(f"/api/v1/items/{item['id']}/content", "staff").status_code == 403
    denials = Counter(
        clock.day_of(datetime.fromisoformat(e["at"])).isoformat()
        for e in office.audit_entries(decision="deny")
    )
    page = text(Reader(app).login("audit").get("/audit/charts?days=7"))
    shown = {day: int(n) for day, n in re.findall(r"since=(\d{4}-\d\d-\d\d)\">(\d+)</a>", page)}
    assert {d: n for d, n in shown.items() if n} == dict(denials)
    assert "Asia/Shanghai" in page and "UTC days" not in page


def test_every_time_and_every_note_of_the_zone_carry_one_label(office, app):
    """Times were labelled GMT+08:00 while the trail's filters, the charts and the lockout named
    the zone Asia/Shanghai, two words for one zone. The notes now say the label the times carry,
    then the zone's name."""
    from tests.pages import field_error
    from tests.test_sessions import _lock_out

    office.agreement()
    auditor = Reader(app, "zh-CN").login("audit")
    trail = text(auditor.get("/audit?action=agreement:create"))
    labels = set(re.findall(r"\d+:\d\d:\d\d (\S+)</td>", trail))
    assert labels == {"GMT+08:00"}, labels
    assert "日期和时间均按办公室所在时区（GMT+08:00，Asia/Shanghai）计。" in trail
    charts = text(auditor.get("/audit/charts?days=7"))
    assert "日期按办公室所在时区（GMT+08:00，Asia/Shanghai）计" in charts
    reader = Reader(app, "zh-CN")
    _lock_out(reader, "handler")
    refused = reader.submit("/login", {"username": "handler", "password": "wrong password!"})
    assert re.search(
        r"请于 [\d :-]+（GMT\+08:00，Asia/Shanghai）之后再试", field_error(refused, "password")
    )
