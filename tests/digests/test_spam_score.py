"""SpamAssassin, run locally with its stock rules, judges every email we send: the
digest, the confirmation, the manage link and the welcome issue each score 0.0 or less."""

import os
import re
import subprocess
import tempfile

import pytest
from django.core import mail

from digests import delivery
from digests.models import Delivery, Issue
from subscriptions import notices
from tests.digests.helpers import make_papers, make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.spamassassin]


def spam_report(spamassassin_bin: str, raw: bytes) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as home:
        done = subprocess.run(
            [spamassassin_bin, "-L", "-t", "--cf=use_bayes 0"],
            input=raw,
            capture_output=True,
            env={**os.environ, "HOME": home},
            timeout=120,
        )
    out = done.stdout.decode(errors="replace")
    status = re.search(r"^X-Spam-Status: (.*?)(?=^\S)", out, re.MULTILINE | re.DOTALL)
    assert status, out[:2000] + done.stderr.decode(errors="replace")
    header = " ".join(status.group(1).split())
    score = float(re.search(r"score=(-?[\d.]+)", header).group(1))
    rules = re.search(r"tests=(.*?)(?: autolearn=| version=|$)", header).group(1)
    return score, rules


@pytest.fixture
def reader(settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@testserver"
    make_papers()
    return make_subscriber(
        "reader@example.org", topics=["diffusion sampling", "reinforcement learning", "protein folding"]
    )


def _score(spamassassin_bin, message) -> tuple[float, str]:
    score, rules = spam_report(spamassassin_bin, message.message().as_bytes(linesep="\r\n"))
    print(f"SpamAssassin score {score} rules {rules}")
    return score, rules


def test_a_rendered_digest_scores_zero_or_less(spamassassin_bin, reader):
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    row = Delivery.objects.create(issue=issue, subscriber=reader)
    assert delivery.deliver_batch([row.id]).sent == [row.id]
    score, rules = _score(spamassassin_bin, mail.outbox[0])
    assert score <= 0.0, rules


SUBSCRIPTION_EMAILS = [notices.send_confirmation_email, notices.send_manage_email]


@pytest.mark.parametrize("send", SUBSCRIPTION_EMAILS, ids=["confirm", "manage"])
def test_subscription_emails_score_zero_or_less(spamassassin_bin, reader, send):
    send(reader)
    score, rules = _score(spamassassin_bin, mail.outbox[0])
    assert score <= 0.0, rules


def test_the_welcome_issue_scores_zero_or_less(spamassassin_bin, reader):
    from digests import welcome

    row = welcome.welcome_delivery(reader)
    assert delivery.deliver_batch([row.id]).sent == [row.id]
    assert mail.outbox[0].subject.startswith("Welcome: ")
    score, rules = _score(spamassassin_bin, mail.outbox[0])
    assert score <= 0.0, rules
