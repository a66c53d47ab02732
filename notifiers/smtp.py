"""Email through an SMTP server with the standard library (STARTTLS or TLS, login).

Implementation notes (SMTP replies onto delivery outcomes, through classify_smtp):
  (a) no connection, a dropped one, a timeout -> retry;
  (b) a reply code: 4xx -> retry, 5xx -> permanent (a refused login is 535);
  (c) every recipient refused -> by their worst code; some refused -> sent, and the
      answer names the refused ones;
  (d) the server lacks what the configuration asks (STARTTLS, AUTH), or the
      certificate does not verify -> permanent: only a configuration change helps.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from notifiers._answers import network_detail
from notifiers._email import email_bodies, email_subject
from notifiers.config import SmtpConfig
from notifiers.errors import PermanentDelivery
from notifiers.message import Message, ProviderAnswer
from notifiers.policy import classify, classify_smtp
from notifiers.redact import redact

CHANNEL = "smtp"


def build_payload(message: Message, config: SmtpConfig) -> EmailMessage:
    """The email (plain text, and HTML as an alternative when given); PermanentDelivery
    when nobody would receive it. The Date header is the sender's to add."""
    to, cc = config.recipients(message)
    if not to:
        raise PermanentDelivery(None, "no recipient: give 'to' in the action or the notifier")
    email = EmailMessage()
    email["Subject"] = email_subject(message)
    email["From"] = formataddr((config.from_name or "", config.from_email))
    email["To"] = ", ".join(to)
    if cc:
        email["Cc"] = ", ".join(cc)
    # the same message redelivered keeps its Message-ID, so mail clients show it once
    domain = config.from_email.rpartition("@")[2]
    email["Message-ID"] = f"<{message.id}@{domain}>"
    text, html = email_bodies(message)
    email.set_content(text)
    if html is not None:
        email.add_alternative(html, subtype="html")
    return email


class SmtpNotifier:
    """Sends each message as one email over a fresh SMTP session."""

    channel = CHANNEL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._secrets = config.secret_values()

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.config.host}:{self.config.effective_port})"

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context()
        if config.tls:
            session: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.effective_port,
                                                     timeout=config.timeout_s, context=context)
        else:
            session = smtplib.SMTP(config.host, config.effective_port, timeout=config.timeout_s)
        try:
            session.ehlo()
            if config.starttls:
                session.starttls(context=context)
                session.ehlo()
            if config.username is not None:
                password = config.password.get_secret_value() if config.password else ""
                session.login(config.username, password)
        except BaseException:
            session.close()
            raise
        return session

    def send(self, message: Message) -> ProviderAnswer:
        """One SMTP session sending one email; RetryableDelivery or PermanentDelivery."""
        email = build_payload(message, self.config)
        email["Date"] = formatdate(usegmt=True)
        to, cc = self.config.recipients(message)
        try:
            session = self._connect()
            try:
                refused = session.send_message(email, from_addr=self.config.from_email,
                                               to_addrs=to + cc)
            finally:
                try:
                    session.quit()
                except (smtplib.SMTPException, OSError):
                    session.close()
        except smtplib.SMTPRecipientsRefused as error:  # (c)
            codes = [code for code, _ in error.recipients.values()]
            raise classify_smtp(max(codes, default=None)).failure(
                self._detail(f"every recipient refused: {self._refusals(error.recipients)}"),
            ) from None
        except smtplib.SMTPResponseException as error:  # (b)
            reply = error.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise classify_smtp(error.smtp_code).failure(
                self._detail(f"server answered {error.smtp_code}: {text}")) from None
        except smtplib.SMTPServerDisconnected as error:  # (a)
            raise classify(None).failure(network_detail(CHANNEL, error, self._secrets)) \
                from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as error:  # (d)
            raise PermanentDelivery(None, self._detail(f"{type(error).__name__}: {error}")) \
                from None
        except smtplib.SMTPException as error:  # (d): "no suitable authentication method"
            raise PermanentDelivery(None, self._detail(str(error))) from None
        except OSError as error:  # (a)
            raise classify(None).failure(network_detail(CHANNEL, error, self._secrets)) \
                from None
        accepted = len(to) + len(cc) - len(refused)
        summary = f"250 accepted for {accepted} recipient(s)"
        if refused:  # (c)
            summary += f"; refused: {self._refusals(refused)}"
        return ProviderAnswer(channel=CHANNEL, status=250, summary=redact(summary, self._secrets))

    @staticmethod
    def _refusals(refused: dict) -> str:
        return ", ".join(f"{address} ({code})" for address, (code, _) in refused.items())

    def _detail(self, text: str) -> str:
        return redact(f"{CHANNEL}: {' '.join(text.split())}", self._secrets)

    def close(self) -> None:
        """Nothing to release: each send opens and closes its own session."""
