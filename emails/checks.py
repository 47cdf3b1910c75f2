"""System checks for the mail settings: a sender every mail server accepts.

An invalid ``DEFAULT_FROM_EMAIL`` (``digest@127.0.0.1``: an IP address is only an
address literal in brackets) is refused at ``MAIL FROM`` by every message: the server
says nothing about any recipient, yet the whole issue fails. ``manage.py check`` (and
``runserver``, ``migrate``, the workers' startup) report it as an error.
"""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path

from django.conf import settings
from django.core import checks

# RFC 5321 4.1.2: Dot-string local part (a quoted one is allowed too), a domain of
# letter/digit/hyphen labels, or an address literal.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf'{_ATOM}(?:\.{_ATOM})*|"(?:[^"\\\r\n]|\\.)*"')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def sender_problem(value: str) -> str | None:
    """Why ``value`` (``Name <addr>`` or ``addr``) is no sender a mail server accepts, or None."""
    value = (value or "").strip()
    address = value[value.rindex("<") + 1 : -1] if value.endswith(">") and "<" in value else value
    if not parseaddr(value)[1] or "@" not in address:
        return f"{value!r} has no address of the form local@domain"
    local, _, domain = address.rpartition("@")
    if not _LOCAL.fullmatch(local):
        return f"{address!r}: the part before @ is not a valid local part"
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1].removeprefix("IPv6:")
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            return f"{address!r}: {domain} is not an address literal"
        return None
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        pass
    else:
        return f"{address!r}: a bare IP address is no domain (mail servers answer 501 5.1.7); use a domain name"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{address!r}: {domain!r} is not a domain name"
    labels = ascii_domain.rstrip(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return f"{address!r}: {domain!r} is not a domain name"
    return None


@checks.register(checks.Tags.compatibility)
def check_mail_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    names = ["DEFAULT_FROM_EMAIL"]
    if getattr(settings, "SERVER_EMAIL", "") != settings.DEFAULT_FROM_EMAIL:
        names.append("SERVER_EMAIL")
    for name in names:
        problem = sender_problem(getattr(settings, name, ""))
        if problem:
            errors.append(
                checks.Error(
                    f"{name} is not a valid sender: {problem}.",
                    hint=f"Set {name} to an address at a domain you send from, "
                    "e.g. 'Paper Digest <digest@example.org>'.",
                    id="emails.E001",
                )
            )
    cafile = getattr(settings, "EMAIL_SSL_CAFILE", "")
    if cafile and not Path(cafile).is_file():
        errors.append(checks.Error(f"EMAIL_SSL_CAFILE={cafile!r} is not a readable file.", id="emails.E002"))
    return errors
