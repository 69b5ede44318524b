"""Web pages for accounts (included at the site root) and allauth's flows under /accounts/."""

from __future__ import annotations

from django.urls import include, path

from . import views
from .allauth_views import InviteSignupView

urlpatterns = [
    path("", views.home, name="home"),
    path("keys/", views.keys_list, name="keys"),
    path("keys/new/", views.key_create, name="key_create"),
    path("keys/<int:key_id>/edit/", views.key_edit, name="key_edit"),
    path("keys/<int:key_id>/toggle/", views.key_toggle, name="key_toggle"),
    path("keys/<int:key_id>/delete/", views.key_delete, name="key_delete"),
    path("topup/", views.topup, name="topup"),
    path("playground/", views.playground, name="playground"),
    path("playground/key/", views.playground_key, name="playground_key"),
    path("account/", views.account, name="account"),
    path("account/token/", views.account_token, name="account_token"),
    path("account/delete/", views.account_delete, name="account_delete"),
    # allauth's sign-up page, remembering `?aff=`; the same path and name as allauth's own.
    path("accounts/signup/", InviteSignupView.as_view(), name="account_signup"),
    path("accounts/", include("allauth.urls")),
]
