"""One way for every dashboard action (``run_action``): permission, form, confirmation
for those that touch people, one service call, an admin log entry, a message.

Each ``Action`` names the permission it needs (``digests.models.OPERATOR_PERMISSIONS``);
``run_action`` checks it before anything else, so an operator without it gets a 403
whatever they send, and the dashboard hides the action (``perms`` in the templates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse


def page_context(request, **extra) -> dict:
    return {**admin.site.each_context(request), "is_nav_sidebar_enabled": False, **extra}


@dataclass
class Done:
    """What an action did: shown to the operator, and written to the admin log about
    ``about`` (None: the dashboard itself)."""

    message: str
    log: str = ""
    about: object = None
    errors: list[str] = field(default_factory=list)


class Refused(Exception):
    """The service changed nothing: the form comes back with this error on ``field``."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field_name = field_name
        self.message = message


@dataclass(frozen=True)
class Action:
    title: str | Callable[..., str]  # or (**url_kwargs) -> title
    url_name: str
    form_class: type[forms.Form]
    # (request, cleaned_data, **url_kwargs) -> Done, or a response of its own; may raise Refused
    perform: Callable[..., Done | HttpResponseBase]
    permission: str  # "digests.<codename>"
    confirm: Callable[..., str] | None = None  # (cleaned_data, **url_kwargs) -> the question, for actions on people
    confirm_button: str = "Yes, send"
    confirm_note: str = "This sends real email."
    submit: str = "Continue"
    multipart: bool = False
    initial_from_query: tuple[str, ...] = ()


def require(request, permission: str) -> None:
    """403 unless the user holds ``permission``: the one check every action and download makes."""
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"You need the {permission} permission for this.")


def run_action(request, action: Action, **url_kwargs):
    """Permission, form, confirmation (when the action touches people), service, admin log, message."""
    require(request, action.permission)
    url = reverse(action.url_name, kwargs=url_kwargs or None)
    title = action.title(**url_kwargs) if callable(action.title) else action.title
    page = {"title": title, "action_url": url, "submit": action.submit, "multipart": action.multipart}
    if request.method == "POST":
        form = action.form_class(request.POST, request.FILES)
    elif action.form_class.base_fields or action.confirm is None:
        form = action.form_class(initial={name: request.GET.get(name, "") for name in action.initial_from_query})
        return form_page(request, form, **page)
    else:  # nothing to fill in: straight to the question
        form = action.form_class({})
    if not form.is_valid():
        return form_page(request, form, **page)
    if action.confirm is not None and request.POST.get("confirmed") != "yes":
        return TemplateResponse(
            request,
            "admin/dashboard_confirm.html",
            page_context(
                request,
                title=title,
                form=form,
                action_url=url,
                summary=action.confirm(form.cleaned_data, **url_kwargs),
                confirm_button=action.confirm_button,
                confirm_note=action.confirm_note,
                multipart=action.multipart,
            ),
        )
    try:
        done = action.perform(request, form.cleaned_data, **url_kwargs)
    except Refused as refused:
        form.add_error(refused.field_name, refused.message)
        return form_page(request, form, **page)
    if isinstance(done, HttpResponseBase):
        return done
    record(request, done.log or done.message, done.about)
    messages.success(request, done.message)
    for error in done.errors:
        messages.error(request, error)
    return redirect("dashboard:index")


def form_page(request, form, *, title: str, action_url: str, submit: str, multipart: bool = False):
    return TemplateResponse(
        request,
        "admin/dashboard_action.html",
        page_context(
            request, title=title, form=form, action_url=action_url, intro="", submit=submit, multipart=multipart
        ),
        status=400 if form.is_bound else 200,
    )


def record(request, message: str, obj=None) -> None:
    """Write the action to the admin log (shown under "Recent actions" and in object history)."""
    if obj is not None:
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
        )
    else:
        LogEntry.objects.create(
            user_id=request.user.pk, action_flag=CHANGE, object_repr="Dashboard", change_message=message
        )
