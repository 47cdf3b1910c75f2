from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from papers.models import Paper
from subscriptions.feedback import VOTES, record_vote
from subscriptions.models import Subscriber
from subscriptions.tokens import BadToken, read_token

_INVALID = "This link is not valid."


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def feedback(request, token):
    """A 👍/👎 link from a digest, no login.

    Mail scanners open every link of a message before the reader does, so a GET records
    nothing: it shows the paper and a button, and the button POSTs the vote. The signed
    token is the authority here, not a session, so the POST needs no CSRF cookie (like
    the one-click unsubscribe): nobody without the link can vote, and a vote is always
    reversible from the same page. HEAD requests (link checkers) get 405.
    """
    try:
        payload = read_token("feedback", token)
    except BadToken:
        return HttpResponseBadRequest(_INVALID)
    return _vote_page(request, payload.get("s"), payload.get("p"), payload.get("t"), payload.get("v"))


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def feedback_vote(request, token, paper, topic, vote):
    """A 👍/👎 link of a digest whose token says only whose vote it is (see
    ``links.FeedbackLinks``); otherwise as ``feedback``. A token made for one paper's
    vote (the older links) votes on that paper only."""
    try:
        payload = read_token("feedback", token)
    except BadToken:
        return HttpResponseBadRequest(_INVALID)
    if payload.get("p", paper) != paper or vote not in VOTES:
        return HttpResponseBadRequest(_INVALID)
    return _vote_page(request, payload.get("s"), paper, topic or None, VOTES[vote])


def _vote_page(request, subscriber_id, paper_id, topic_id, vote):
    """GET: the link's vote, offered as a button. POST: the vote the button sent, recorded."""
    if request.method == "POST":
        try:
            vote = int(request.POST.get("vote", ""))
        except ValueError:
            return HttpResponseBadRequest("Choose 👍 or 👎.")
    if vote not in (1, -1):
        return HttpResponseBadRequest("Choose 👍 or 👎.")
    subscriber = Subscriber.objects.filter(id=subscriber_id).only("id").first()
    paper = Paper.objects.filter(id=paper_id).only("id", "title", "page_url", "abs_url", "pdf_url").first()
    if subscriber is None or paper is None:
        return HttpResponseBadRequest(_INVALID)
    if request.method == "POST":
        record_vote(subscriber_id=subscriber.id, paper_id=paper.id, vote=vote, topic_id=topic_id)
        return render(request, "subscriptions/feedback.html", {"paper": paper, "recorded": vote, "vote": -vote})
    return render(request, "subscriptions/feedback.html", {"paper": paper, "recorded": None, "vote": vote})
