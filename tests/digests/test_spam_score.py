"""SpamAssassin, run locally with its stock rules, judges a real rendered digest."""

import os
import re
import subprocess
import tempfile

import pytest
from django.core import mail

from digests import delivery
from digests.models import Delivery, Issue
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


def test_a_rendered_digest_scores_well_under_two(spamassassin_bin, settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@testserver"
    make_papers()
    subscriber = make_subscriber(
        "reader@example.org", topics=["diffusion sampling", "reinforcement learning", "protein folding"]
    )
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    row = Delivery.objects.create(issue=issue, subscriber=subscriber)
    assert delivery.deliver_batch([row.id]).sent == [row.id]
    raw = mail.outbox[0].message().as_bytes(linesep="\r\n")

    score, rules = spam_report(spamassassin_bin, raw)
    print(f"SpamAssassin score {score} rules {rules}")
    assert score < 2.0, rules
