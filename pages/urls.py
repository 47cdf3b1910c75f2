from django.urls import path, re_path

from pages import feeds, views

app_name = "pages"
urlpatterns = [
    path("", views.home, name="home"),
    path("papers/", views.papers_index, name="papers"),
    re_path(r"^papers/date/(?P<day>\d{4}-\d{2}-\d{2})/$", views.day, name="day"),
    re_path(r"^papers/week/(?P<week>\d{4}-W\d{2})/$", views.week, name="week"),
    re_path(r"^papers/month/(?P<month>\d{4}-\d{2})/$", views.month, name="month"),
    path("papers/<int:pk>/", views.paper, name="paper"),
    path("search", views.search, name="search"),
    path("feeds/trending.atom", feeds.trending_feed, name="trending-feed"),
    path("feeds/search.atom", feeds.search_feed, name="search-feed"),
    path("api/papers", views.api_papers, name="api-papers"),
]
