from django.shortcuts import render

from papers.models import Paper


def signup(request):
    """The landing page; the signup flow itself is built in subscriptions.services."""
    recent = Paper.objects.order_by("-upvotes")[:5]
    return render(request, "subscriptions/signup.html", {"recent_papers": recent})


def confirm(request, token):
    raise NotImplementedError("built by the subscriptions issue")


def preferences(request, token):
    raise NotImplementedError("built by the subscriptions issue")


def unsubscribe(request, token):
    raise NotImplementedError("built by the subscriptions issue")
