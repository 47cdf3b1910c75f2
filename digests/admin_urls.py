"""Staff pages under /admin/ that are not model admins (the dashboard)."""

urlpatterns: list = []
