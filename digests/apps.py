from django.apps import AppConfig


class DigestsConfig(AppConfig):
    name = "digests"
    verbose_name = "Digests"

    def ready(self):
        from digests import receivers  # noqa: F401  (settles a suppressed address's queued copies)
        from emails import checks  # noqa: F401  (registers the mail settings' system checks)
