from django.apps import AppConfig


class RankingConfig(AppConfig):
    name = "ranking"
    verbose_name = "Ranking"

    def ready(self):
        from ranking import receivers  # noqa: F401  (embeds papers as the importers store them)
