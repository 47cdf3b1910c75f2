from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"
    verbose_name = "Public pages"

    def ready(self):
        from pages import receivers  # noqa: F401  (kept pages go out of date when papers change)
