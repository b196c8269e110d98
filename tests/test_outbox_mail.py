"""`govern outbox send` against a real SMTP server started by the test (aiosmtpd)."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from govern.cli import main
from govern.models import OutboxMessage
from tests.conftest import as_operator


class Mailbox:
    """An SMTP server's handler that keeps what it is given, or refuses every recipient."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.received: list[tuple[list[str], str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.content.decode("utf-8")))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    started = []

    def start(refuse: bool = False):
        mailbox = Mailbox(refuse)
        controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
        controller.start()
        started.append(controller)
        return mailbox, controller.port

    yield start
    for controller in started:
        controller.stop()


def _queue(runtime, count: int = 2) -> None:
    from govern.services import outbox

    with as_operator(runtime) as ctx:
        for n in range(count):
            outbox.notify(
                ctx,
                f"test-{n}",
                "nda_ends",
                f"NDA {n} ends in 30 days",
                "Renew it or access ends (clause 3.8).",
                recipient_role="office_approver",
            )


def _sent(runtime) -> list:
    with runtime.sessions() as db:
        return list(db.scalars(sa.select(OutboxMessage.sent_at).order_by(OutboxMessage.id)))


def _send(monkeypatch, settings_overrides, port: int, *extra: str):
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    monkeypatch.setenv("GOVERN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("GOVERN_SMTP_PORT", str(port))
    args = ["outbox", "send", "--database-url", settings_overrides["database_url"], *extra]
    return CliRunner().invoke(main, args)


def test_messages_arrive_and_are_marked_sent(
    api, runtime, settings_overrides, smtp_server, monkeypatch
):
    _queue(runtime)
    mailbox, port = smtp_server()
    result = _send(
        monkeypatch, settings_overrides, port, "--to", "office_approver=boss@gov.example"
    )
    assert result.exit_code == 0, result.output
    assert "sent 2" in result.output
    assert [to for to, _ in mailbox.received] == [["boss@gov.example"]] * 2
    assert "NDA 0 ends in 30 days" in mailbox.received[0][1]
    assert all(at is not None for at in _sent(runtime))
    (entry,) = api.audit_entries(action="outbox:send")
    assert entry["details"]["sent"] == [1, 2]
    # A second run finds nothing left to send.
    again = _send(monkeypatch, settings_overrides, port, "--to", "office_approver=boss@gov.example")
    assert "sent 0" in again.output and len(mailbox.received) == 2


def test_a_refusing_server_leaves_them_pending(
    runtime, settings_overrides, smtp_server, monkeypatch
):
    _queue(runtime)
    _mailbox, port = smtp_server(refuse=True)
    result = _send(
        monkeypatch, settings_overrides, port, "--to", "office_approver=boss@gov.example"
    )
    assert result.exit_code == 0 and "refused 2" in result.output, result.output
    assert _sent(runtime) == [None, None]


def test_an_unreachable_server_changes_nothing(runtime, settings_overrides, monkeypatch):
    _queue(runtime)
    result = _send(
        monkeypatch, settings_overrides, _free_port(), "--to", "office_approver=boss@gov.example"
    )
    assert result.exit_code == 1 and "cannot be reached" in result.output
    assert _sent(runtime) == [None, None]


def test_a_notice_is_mailed_in_chinese_with_its_english(
    runtime, settings_overrides, smtp_server, monkeypatch
):
    """A notice stored as message keys is mailed readable by the office: Chinese, then English."""
    from email import message_from_string, policy

    from govern.messages import Msg
    from govern.services import outbox

    with as_operator(runtime) as ctx:
        outbox.notify(
            ctx,
            "term-ends:test",
            "term_ends",
            Msg("notice.term_ends", id=7, day="2027-06-26"),
            Msg("notice.term_ends", id=7, day="2027-06-26"),
            recipient_role="office_approver",
        )
    mailbox, port = smtp_server()
    result = _send(
        monkeypatch, settings_overrides, port, "--to", "office_approver=boss@gov.example"
    )
    assert result.exit_code == 0, result.output
    mail = message_from_string(mailbox.received[0][1], policy=policy.default)
    subject = str(mail["Subject"])
    assert subject == (
        "协议 7 的保密期限将于 2027-06-26 届满 / "
        "The confidentiality term of agreement 7 ends on 2027-06-26"
    )
    body = mail.get_content()
    assert body.index("The confidentiality term of agreement 7")


def test_a_recall_or_termination_nobody_held_mails_that_there_is_nothing_to_confirm(
    office, settings_overrides, smtp_server, monkeypatch
):
    """The lead's notice of a recall nobody held says there is nothing to confirm; the mail under
    it still asked to "confirm each holder's return or destruction". Both say the same now."""
    from email import message_from_string, policy

    recalled = office.agreement()
    item = office.item(recalled["id"], content=b"untouched", title="untouched")
    body = {"item_ids": [item["id"]], "reason": "旧版收回"}
    recall = office.post(f"/api/v1/agreements/{recalled['id']}/recalls", "approver", json=body)
    assert recall.status_code == 201 and recall.get_json()["open_confirmations"] == []
    ended = office.agreement(title="运维协议")
    office.item(ended["id"], content=b"also untouched", title="untouched too")
    terminated = office.post(f"/api/v1/agreements/{ended['id']}/terminate", "approver")
    assert terminated.status_code == 200, terminated.get_json()
    mailbox, port = smtp_server()
    result = _send(monkeypatch, settings_overrides, port, "--to", "vendor_lead=lead@vendor.example")
    assert result.exit_code == 0, result.output
    mails = [message_from_string(raw, policy=policy.default) for _, raw in mailbox.received]
    bodies = {str(m["Subject"]).split("：")[0]: m.get_content() for m in mails}
    recall_mail = bodies[f"收回令 {recall.get_json()['id']}"]
    assert "无人持有这些信息，无需确认" in recall_mail and "nothing to confirm" in recall_mail
    termination_mail = next(b for s, b in bodies.items() if s.startswith("协议解除"))
    assert "无人持有受保护的信息，无需确认" in termination_mail
    assert "nothing to confirm" in termination_mail
    for mailed in (recall_mail, termination_mail):
        assert "请逐一确认" not in mailed and "Confirm each holder" not in mailed, mailed
