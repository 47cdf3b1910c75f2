from django.urls import path

from subscriptions import data_views, topic_views, views

app_name = "subscriptions"
urlpatterns = [
    path("subscribe/", views.signup, name="signup"),
    path("preview.json", views.preview_json, name="preview"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("confirm/<str:token>/resend/", views.resend_confirmation, name="resend"),
    path("manage/", views.lost_link, name="lost-link"),
    path("manage/<str:token>/", views.preferences, name="preferences"),
    path("test-copy/<slug:link>/", views.inert_link, name="test-copy"),
    path("manage/<str:token>/my-data.json", data_views.my_data, name="my_data"),
    path("manage/<str:token>/topic/<int:topic>/", topic_views.topic_page, name="topic"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
