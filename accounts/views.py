"""End-user pages for the account: home, relay keys, top-up and invites, playground, account.

Every object is looked up within the signed-in user's own rows, so another user's key id is a
404 exactly like a missing one. Writes go through the same services as the management API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from billing.admin import format_usd
from billing.selectors import models_for_group, user_group_name

from .models import ApiKey, KeyStatus, User
from .page_forms import DeleteAccountForm, DisplayNameForm, KeyForm, RedeemForm
from .redemptions import RedeemError, redemption_redeem
from .runtime_options import get_options
from .services import AccountRefused, access_token_regenerate, aff_code_ensure, api_key_create, user_delete

PLAYGROUND_KEY_NAME = "playground"
PLAYGROUND_KEY_LIFETIME = timedelta(days=1)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _own_key(request: HttpRequest, key_id: int) -> ApiKey:
    return get_object_or_404(ApiKey, pk=key_id, user=_user(request))


def _no_store(response: HttpResponse) -> HttpResponse:
    # Pages that show a secret once must not be kept by the browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


def home(request: HttpRequest) -> HttpResponse:
    opts = get_options("HomePageContent", "Notice")
    return render(request, "home.html", {"content": opts["HomePageContent"], "notice": opts["Notice"]})


# ------------------------------------------------------------------------------------ keys


@login_required
def keys_list(request: HttpRequest) -> HttpResponse:
    keys = ApiKey.objects.filter(user=_user(request)).order_by("-id")
    return render(request, "accounts/keys.html", {"nav": "keys", "keys": keys, "now": timezone.now()})


def _model_choices(request: HttpRequest) -> list[str]:
    return models_for_group(user_group_name(request.user))


@login_required
@never_cache
def key_create(request: HttpRequest) -> HttpResponse:
    form = KeyForm(request.POST or None, initial={"unlimited_quota": True})
    if request.method == "POST" and form.is_valid():
        api_key, raw = api_key_create(user=_user(request), **form.key_fields())
        return _no_store(render(request, "accounts/key_created.html", {"nav": "keys", "key": api_key, "raw_key": raw}))
    return render(
        request, "accounts/key_form.html", {"nav": "keys", "form": form, "creating": True, "models": _model_choices(request)}
    )


@login_required
def key_edit(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    form = KeyForm(request.POST or None, initial=KeyForm.initial_for(api_key), creating=False)
    if request.method == "POST" and form.is_valid():
        fields = form.key_fields()
        for name, value in fields.items():
            setattr(api_key, name, value)
        if api_key.status in (KeyStatus.EXPIRED, KeyStatus.EXHAUSTED) and _usable(api_key):
            # The edit gave it a future expiry or new quota: it works again.
            api_key.status = KeyStatus.ENABLED
            fields["status"] = api_key.status
        api_key.save(update_fields=list(fields))
        messages.success(request, f"Saved key “{api_key.name}”.")
        return HttpResponseRedirect(reverse("keys"))
    context = {"nav": "keys", "form": form, "creating": False, "key": api_key, "models": _model_choices(request)}
    return render(request, "accounts/key_form.html", context)


def _unusable_reason(api_key: ApiKey) -> str | None:
    """Why the key could not work if enabled (the relay's own two checks), in the page's words."""
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        return "it has expired: edit it and set a later expiry (or none) first."
    if not api_key.unlimited_quota and api_key.remain_quota <= 0:
        return "its quota is used up: edit it and raise the quota (or make it unlimited) first."
    return None


def _usable(api_key: ApiKey) -> bool:
    return _unusable_reason(api_key) is None


@login_required
@require_POST
def key_toggle(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    new_status = KeyStatus.DISABLED if api_key.status == KeyStatus.ENABLED else KeyStatus.ENABLED
    reason = _unusable_reason(api_key) if new_status == KeyStatus.ENABLED else None
    if reason:
        messages.error(request, f"Key “{api_key.name}” was not enabled: {reason}")
        return HttpResponseRedirect(reverse("keys"))
    api_key.status = new_status
    api_key.save(update_fields=["status"])
    messages.success(request, f"Key “{api_key.name}” is now {KeyStatus(new_status).label}.")
    return HttpResponseRedirect(reverse("keys"))


@login_required
def key_delete(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    if request.method == "POST":
        name = api_key.name
        api_key.delete()
        messages.success(request, f"Deleted key “{name}”. Clients using it are refused from now on.")
        return HttpResponseRedirect(reverse("keys"))
    return render(request, "accounts/key_delete.html", {"nav": "keys", "key": api_key})


# ------------------------------------------------------------------------------------ top-up and invites


@login_required
def topup(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = RedeemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        before = user.quota
        try:
            code = redemption_redeem(user=user, code=form.cleaned_data["code"])
        except RedeemError as exc:
            form.add_error("code", exc.message)
        else:
            messages.success(
                request,
                f"Redeemed {format_usd(code.quota)}: your balance went from {format_usd(before)} to {format_usd(user.quota)}.",
            )
            return HttpResponseRedirect(reverse("topup"))
    opts = get_options("TopUpLink", "QuotaForInviter", "QuotaForInvitee")
    invite_url = request.build_absolute_uri(reverse("account_signup")) + f"?aff={aff_code_ensure(user=user)}"
    context = {
        "nav": "topup",
        "form": form,
        "balance": format_usd(user.quota),
        "top_up_link": opts["TopUpLink"],
        "invite_url": invite_url,
        "inviter_reward": format_usd(opts["QuotaForInviter"]),
        "invitee_reward": format_usd(opts["QuotaForInvitee"]),
        "invitees": User.objects.filter(inviter=user).count(),
    }
    return render(request, "accounts/topup.html", context)


# ------------------------------------------------------------------------------------ playground


@login_required
def playground(request: HttpRequest) -> HttpResponse:
    context = {"nav": "playground", "models": _model_choices(request)}
    return render(request, "accounts/playground.html", context)


@login_required
@require_POST
@never_cache
def playground_key(request: HttpRequest) -> JsonResponse:
    """A short-lived key for the playground: raw keys are never stored, so the page cannot
    reuse an existing one unless the user pastes it."""
    user = _user(request)
    expires = timezone.now() + PLAYGROUND_KEY_LIFETIME
    api_key, raw = api_key_create(user=user, name=PLAYGROUND_KEY_NAME, unlimited_quota=True, expires_at=expires)
    return JsonResponse({"key": raw, "name": api_key.name, "expires_at": expires.isoformat()})


# ------------------------------------------------------------------------------------ account


@login_required
@never_cache
def account(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = DisplayNameForm(request.POST or None, initial={"display_name": user.display_name})
    if request.method == "POST" and form.is_valid():
        user.display_name = form.cleaned_data["display_name"]
        user.save(update_fields=["display_name"])
        messages.success(request, "Saved your display name.")
        return HttpResponseRedirect(reverse("account"))
    context: dict[str, Any] = {
        "nav": "account",
        "form": form,
        "delete_form": DeleteAccountForm(user=user),
        "has_token": bool(user.access_token_digest),
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_POST
@never_cache
def account_token(request: HttpRequest) -> HttpResponse:
    token = access_token_regenerate(user=_user(request))
    return _no_store(render(request, "accounts/token_created.html", {"nav": "account", "token": token}))


@login_required
@require_POST
def account_delete(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = DeleteAccountForm(request.POST, user=user)
    if form.is_valid():
        try:
            user_delete(user=user)
        except AccountRefused as exc:
            form.add_error(None, exc.message)
        else:
            logout(request)
            messages.success(request, "Your account was deleted.")
            return HttpResponseRedirect(reverse("home"))
    context = {"nav": "account", "form": DisplayNameForm(initial={"display_name": user.display_name}), "delete_form": form}
    return render(request, "accounts/account.html", context, status=200)
