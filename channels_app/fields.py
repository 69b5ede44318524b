from __future__ import annotations

from typing import Any

from django.db import models

from oneapi_site.crypto import decrypt, encrypt


class EncryptedTextField(models.TextField):
    """A text field stored encrypted (see oneapi_site.crypto); Python code sees plain text."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)
