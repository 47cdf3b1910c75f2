"""Staff pages under /admin/ that are not model admins: the dashboard and its actions.

Mounted before ``admin.site.urls``. ``admin_view`` makes every view staff-only
(others are sent to the admin login), CSRF-protected and never cached.
"""

from django.contrib import admin
from django.urls import path

from digests.dashboard import history, people
from digests.dashboard import views as dashboard

app_name = "dashboard"


def _staff(view):
    return admin.site.admin_view(view)


urlpatterns = [
    path("dashboard/", _staff(dashboard.dashboard_view), name="index"),
    path("dashboard/progress.json", _staff(dashboard.progress_view), name="progress"),
    path("dashboard/preview/", _staff(dashboard.preview_view), name="preview"),
    path("dashboard/send-test/", _staff(dashboard.send_test_view), name="send_test"),
    path("dashboard/import/", _staff(dashboard.import_sources_view), name="import_sources"),
    path("dashboard/import/upload/", _staff(dashboard.import_upload_view), name="import_upload"),
    path("dashboard/dispatch/", _staff(dashboard.dispatch_due_view), name="dispatch_due"),
    path("dashboard/issues/<int:issue_id>/retry/", _staff(dashboard.retry_failed_view), name="retry_failed"),
    path("dashboard/issues/<int:issue_id>/resume/", _staff(dashboard.resume_issue_view), name="resume_issue"),
    path("dashboard/suppress/", _staff(dashboard.suppress_view), name="suppress"),
    path("dashboard/restore/", _staff(dashboard.restore_view), name="restore"),
    path("dashboard/subscribers/import/", _staff(people.import_subscribers_view), name="import_subscribers"),
    path("dashboard/subscribers.csv", _staff(people.export_subscribers_view), name="export_subscribers"),
    path("dashboard/issues/<int:issue_id>/", _staff(history.issue_history_view), name="issue_history"),
    path("dashboard/issues/<int:issue_id>/record.csv", _staff(history.issue_record_csv_view), name="issue_record_csv"),
]
