"""Tests for the fake provider (no Django, no database)."""

from __future__ import annotations
