from django.urls import path

from digests.ranking import views

app_name = "ranking"
urlpatterns = [
    path("<str:token>/", views.feedback, name="feedback"),
]
