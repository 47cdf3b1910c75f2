from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self):
        from subscriptions import receivers  # noqa: F401  (connects the anymail tracking receiver)
