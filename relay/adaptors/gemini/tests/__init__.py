"""Tests of the Gemini adaptor (pure: no network, no database)."""
