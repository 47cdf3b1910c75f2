from django.urls import path

from ranking import views

app_name = "ranking"
urlpatterns = [
    # One token per link: the 👍/👎 links of digests sent before FeedbackLinks.
    path("<str:token>/", views.feedback, name="feedback"),
    # One token per digest (feedback.FeedbackLinks builds these under the path above).
    path("<str:token>/<int:paper>/<int:topic>/<str:vote>/", views.feedback_vote, name="vote"),
]
