from django.contrib import admin
from django.urls import include, path

from digestsite.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", include("digests.admin_urls")),
    path("admin/", admin.site.urls),
    path("d/", include("digests.urls")),
    path("f/", include("subscriptions.feedback_urls")),
    path("anymail/", include("digestsite.webhooks")),  # provider webhooks, behind ANYMAIL_WEBHOOK_SECRET
    path("", include("pages.urls")),  # the public site: days, search, paper pages, feeds, API
    path("", include("subscriptions.urls")),
]
