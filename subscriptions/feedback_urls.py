from django.urls import path

from subscriptions import feedback_views as views

app_name = "feedback"
urlpatterns = [
    # One token per link: the 👍/👎 links of digests sent before FeedbackLinks.
    path("<str:token>/", views.feedback, name="link"),
    # One token per digest (feedback.FeedbackLinks builds these under the path above).
    path("<str:token>/<int:paper>/<int:topic>/<str:vote>/", views.feedback_vote, name="vote"),
]
