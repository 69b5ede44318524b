"""`/api` routes for billing (included under `api/`)."""

from __future__ import annotations

from django.urls import path, re_path

from . import api, api_logs

urlpatterns = [
    path("cost/request/<str:request_id>", api.RequestCostView.as_view()),
    re_path(r"^log/self/?$", api_logs.SelfLogsView.as_view()),
    re_path(r"^log/self/search/?$", api_logs.SelfLogSearchView.as_view()),
    re_path(r"^log/self/stat/?$", api_logs.SelfLogStatView.as_view()),
    re_path(r"^log/?$", api_logs.LogsView.as_view()),
    re_path(r"^log/search/?$", api_logs.LogSearchView.as_view()),
    re_path(r"^log/stat/?$", api_logs.LogStatView.as_view()),
]
