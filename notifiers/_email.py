"""What the two email channels (SendGrid, SMTP) build the same way."""

from __future__ import annotations

from html import escape

from notifiers.message import Message

# a longer subject is cut: mail clients show less, and some servers refuse more
SUBJECT_CHARS = 250


def email_subject(message: Message) -> str:
    """The subject on one line (a header cannot hold a line break), cut to a sane length."""
    subject = " ".join(message.subject.split()) or "(no subject)"
    return subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 3] + "..."


def email_bodies(message: Message) -> tuple[str, str | None]:
    """(plain text, HTML or None), each ending with the link when it does not show it yet."""
    text, html = message.text, message.html
    if message.link is not None:
        url, label = message.link.url, message.link.label
        if url not in text:
            text = f"{text.rstrip()}\n\n{label}: {url}\n"
        if html is not None and escape(url) not in html and url not in html:
            html = f'{html}\n<p><a href="{escape(url)}">{escape(label)}</a></p>'
    return text, html
