"""`/api` routes for billing (included under `api/`)."""

from __future__ import annotations

from django.urls import path

from . import api

urlpatterns = [
    path("cost/request/<str:request_id>", api.RequestCostView.as_view()),
]
