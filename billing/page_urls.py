"""Web pages for usage and prices (included at the site root)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("logs/", views.logs_page, name="logs"),
    path("logs/export.csv", views.logs_export, name="logs_export"),
    path("models/", views.models_page, name="models"),
]
