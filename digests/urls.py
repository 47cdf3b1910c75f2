from django.urls import path

from digests import views

app_name = "digests"
urlpatterns = [
    path("<str:token>/", views.web_version, name="web"),
]
