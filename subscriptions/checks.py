"""``manage.py check --deploy``: provider webhooks without a secret.

Provider events (bounces, complaints, unsubscribes) suppress readers, so a webhook
anyone can call is a way to stop anyone's mail. ``digestsite.webhooks`` refuses every
request while no secret is set; this says so before the provider's events are lost.
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register

# SMTP relays of providers whose bounce and complaint events arrive by webhook.
PROVIDER_SMTP_DOMAINS = (
    "postmarkapp.com",
    "sendgrid.net",
    "mailgun.org",
    "amazonaws.com",
    "sparkpostmail.com",
    "mandrillapp.com",
    "brevo.com",
    "sendinblue.com",
    "mailjet.com",
    "resend.com",
    "mailersend.net",
    "mailtrap.io",
)


def mail_goes_through_a_provider() -> bool:
    backend = getattr(settings, "EMAIL_BACKEND", "") or ""
    if backend.startswith("anymail."):
        return True
    host = (getattr(settings, "EMAIL_HOST", "") or "").lower().rstrip(".")
    return "smtp" in backend and any(host == d or host.endswith("." + d) for d in PROVIDER_SMTP_DOMAINS)


@register(Tags.security, deploy=True)
def check_webhook_secret(app_configs=None, **kwargs):
    secret = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET")
    if not mail_goes_through_a_provider() or secret:
        return []
    return [
        Warning(
            "Mail goes through a provider, but ANYMAIL_WEBHOOK_SECRET is not set: its bounce, complaint "
            "and unsubscribe webhooks answer 403 and those events are lost.",
            hint="Set ANYMAIL_WEBHOOK_SECRET=user:long-random-password and give the provider the webhook URL "
            "https://user:long-random-password@your.host/anymail/<provider>/tracking/.",
            id="subscriptions.W001",
        )
    ]
