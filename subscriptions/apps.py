from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self):
        from subscriptions import checks, receivers  # noqa: F401  (the deploy check; the anymail tracking receiver)
