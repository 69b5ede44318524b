"""`/api/channel/...` routes (included under `api/`); admins only."""

from __future__ import annotations

from django.urls import re_path

from . import api

urlpatterns = [
    re_path(r"^channel/?$", api.ChannelCollectionView.as_view()),
    re_path(r"^channel/search/?$", api.ChannelSearchView.as_view()),
    re_path(r"^channel/disabled/?$", api.DisabledChannelsView.as_view()),
    re_path(r"^channel/test/(?P<channel_id>[0-9]+)/?$", api.ChannelTestView.as_view()),
    re_path(r"^channel/update_balance/?$", api.ChannelBalanceView.as_view()),
    re_path(r"^channel/update_balance/(?P<channel_id>[0-9]+)/?$", api.ChannelBalanceView.as_view()),
    re_path(r"^channel/(?P<channel_id>[0-9]+)/?$", api.ChannelDetailView.as_view()),
]
