from django.urls import path

from papers import views

app_name = "papers"
urlpatterns = [
    path("<int:pk>/", views.paper_detail, name="detail"),
]
