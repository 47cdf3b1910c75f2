from django.urls import path

from subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("", views.signup, name="signup"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("manage/<str:token>/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
