"""`/api` routes for the caller's account and relay keys (included under `api/`)."""

from __future__ import annotations

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("status", api.StatusView.as_view()),
    re_path(r"^user/self/?$", api.UserSelfView.as_view()),
    re_path(r"^user/token/?$", api.UserAccessTokenView.as_view()),
    re_path(r"^token/?$", api.TokenCollectionView.as_view()),
    re_path(r"^token/search/?$", api.TokenSearchView.as_view()),
    re_path(r"^token/(?P<key_id>[0-9]+)/?$", api.TokenDetailView.as_view()),
]
