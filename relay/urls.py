"""`/v1` routes served by Django (the hot POST endpoints go to the ASGI relay app instead).

The last pattern catches every other `/v1/...` path so that SDKs get a JSON 404, never HTML.
"""

from __future__ import annotations

from django.urls import re_path

from . import api, responses_api

urlpatterns = [
    re_path(r"^responses/(?P<response_id>[^/]+)/cancel/?$", responses_api.CancelResponseView.as_view()),
    re_path(r"^responses/(?P<response_id>[^/]+)/input_items/?$", responses_api.InputItemsView.as_view()),
    re_path(r"^responses/(?P<response_id>[^/]+)/?$", responses_api.StoredResponseView.as_view()),
    re_path(r"^models/?$", api.ModelListView.as_view()),
    # [\s\S], not ".": a path with an encoded newline must still get the JSON 404, never HTML.
    re_path(r"^models/(?P<model>[\s\S]+?)/?$", api.ModelDetailView.as_view()),
    re_path(r"^[\s\S]*$", api.unknown_relay_route),
]
