"""SMTP: one email per message through smtplib, received by a local aiosmtpd server."""

from __future__ import annotations

import pytest

from notifiers import PermanentDelivery, RetryableDelivery, SmtpConfig, build_notifier
from notifiers.smtp import build_payload
from tests.notifiers.channel_cases import failure_message
from tests.notifiers.conftest import free_port


def smtp_config(host: str, port: int, **fields: object) -> SmtpConfig:
    url = f"smtp://{host}:{port}?starttls=false&from=Flowkeeper <flowkeeper@example.com>"
    return SmtpConfig(url=url, to=["ml-team@example.com"], **fields)


def test_the_server_receives_one_mail_with_subject_and_both_bodies(smtp_server):
    message = failure_message()

    answer = build_notifier(smtp_config(smtp_server.host, smtp_server.port)).send(message)

    assert len(smtp_server.mails) == 1
    mail = smtp_server.mails[0]
    assert mail.mail_from == "flowkeeper@example.com"
    assert mail.rcpt_tos == ["ml-team@example.com"]
    parsed = mail.parsed()
    assert parsed["Subject"] == "taxi-training run swift-fox Failed"
    assert parsed["From"] == "Flowkeeper <flowkeeper@example.com>"
    assert parsed["Message-ID"] == f"<{message.id}@example.com>"
    assert parsed["Date"]
    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "ValueError: no rows in 2024-03" in plain
    assert "Open the run: http://localhost:8000/runs/run-123" in plain
    assert "<b>swift-fox</b>" in html
    assert answer.status == 250 and "1 recipient" in answer.summary


def test_cc_recipients_get_the_mail_too(smtp_server):
    message = failure_message(to=["a@example.com"], cc=["b@example.com"])

    build_notifier(smtp_config(smtp_server.host, smtp_server.port)).send(message)

    assert smtp_server.mails[0].rcpt_tos == ["a@example.com", "b@example.com"]
    assert smtp_server.mails[0].parsed()["Cc"] == "b@example.com"


def test_login_with_the_right_password_sends(smtp_server):
    config = smtp_config(smtp_server.host, smtp_server.port, username=smtp_server.username,
                         password=smtp_server.password)

    build_notifier(config).send(failure_message())

    assert smtp_server.logins == [smtp_server.username]
    assert len(smtp_server.mails) == 1


def test_a_refused_login_is_permanent_and_does_not_show_the_password(smtp_server):
    config = smtp_config(smtp_server.host, smtp_server.port, username="flowkeeper",
                         password="wrong-password-0123")

    with pytest.raises(PermanentDelivery) as raised:
        build_notifier(config).send(failure_message())

    assert raised.value.status == 535
    assert "wrong-password-0123" not in str(raised.value)
    assert smtp_server.mails == []


def test_a_recipient_refused_for_good_is_permanent(smtp_server):
    with pytest.raises(PermanentDelivery) as raised:
        build_notifier(smtp_config(smtp_server.host, smtp_server.port)).send(
            failure_message(to=["nobody@example.com"]))

    assert raised.value.status == 550
    assert "nobody@example.com" in str(raised.value)


def test_a_recipient_refused_for_now_is_retryable(smtp_server):
    with pytest.raises(RetryableDelivery) as raised:
        build_notifier(smtp_config(smtp_server.host, smtp_server.port)).send(
            failure_message(to=["later@example.com"]))

    assert raised.value.status == 451


def test_some_refused_recipients_still_deliver_to_the_others(smtp_server):
    answer = build_notifier(smtp_config(smtp_server.host, smtp_server.port)).send(
        failure_message(to=["a@example.com", "nobody@example.com"]))

    assert smtp_server.mails[0].rcpt_tos == ["a@example.com"]
    assert "refused: nobody@example.com (550)" in answer.summary


def test_no_server_listening_is_retryable():
    with pytest.raises(RetryableDelivery) as raised:
        build_notifier(smtp_config("127.0.0.1", free_port())).send(failure_message())

    assert raised.value.status is None


def test_starttls_asked_of_a_server_without_it_is_permanent(smtp_server):
    config = smtp_config(smtp_server.host, smtp_server.port).model_copy(
        update={"starttls": True})

    with pytest.raises(PermanentDelivery, match="STARTTLS"):
        build_notifier(config).send(failure_message())


def test_the_email_has_a_text_part_only_when_there_is_no_html():
    email = build_payload(failure_message(html=None),
                          smtp_config("mail.example.com", 25))

    assert email.get_content_type() == "text/plain"
    assert "swift-fox" in email.get_content()
