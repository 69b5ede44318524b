from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Group

from .models import Channel
from .types import CHANNEL_TYPES, UNSUPPORTED


def _type_choices() -> list[tuple[int, str]]:
    return [
        (tid, f"{tid} · {info.name}" + (" (not supported yet)" if info.protocol == UNSUPPORTED else ""))
        for tid, info in sorted(CHANNEL_TYPES.items())
    ]


class ChannelForm(forms.ModelForm):
    """The upstream key is write-only: never rendered back, and left blank it keeps the stored one."""

    key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 60}),
        help_text="The upstream API key, stored encrypted. On an existing channel, leave blank to keep the current key.",
    )
    type = forms.TypedChoiceField(coerce=int, choices=_type_choices)

    class Meta:
        model = Channel
        fields = (
            "name",
            "type",
            "key",
            "base_url",
            "status",
            "model_names",
            "model_mapping",
            "groups",
            "priority",
            "weight",
            "config",
            "testing_model",
        )
        widgets = {"model_names": forms.Textarea(attrs={"rows": 3, "cols": 80})}
        labels = {"model_names": "Models"}
        help_texts = {
            "model_names": "Comma- or newline-separated model names, as clients ask for them.",
            "config": 'Provider-specific settings as a JSON object, e.g. {"region": "us-east-1"}.',
            "testing_model": "Model used by channel tests; empty = the first model in the list.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stored key is never sent to the browser, not even as the form's initial value.
        self.initial["key"] = ""
        if "key" in self.fields and self.instance.pk is None:
            self.fields["key"].required = True
        if "groups" in self.fields:
            known = ", ".join(Group.objects.values_list("name", flat=True)) or "none yet"
            self.fields["groups"].help_text = f"Comma-separated groups whose users may use it. Known groups: {known}."

    def clean_key(self) -> str:
        key: str = self.cleaned_data.get("key", "")
        if not key and self.instance.pk is not None:
            return self.instance.key
        return key

    # Shape checks before Channel.clean() runs: it reads the mapping as a dict, and an emptied
    # JSON box arrives as None, which the non-null columns would refuse.
    def clean_model_mapping(self) -> dict[str, str]:
        mapping = self.cleaned_data.get("model_mapping")
        if mapping is None:
            return {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()
        ):
            raise ValidationError('Must be a JSON object of model names, e.g. {"gpt-4o": "gpt-4o-2024-08-06"}.')
        return mapping

    def clean_config(self) -> dict[str, Any]:
        config = self.cleaned_data.get("config")
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise ValidationError("Must be a JSON object.")
        return config

    def add_error(self, field: str | None, error: Any) -> None:
        # Channel.clean() reports the model list under its db column name, "models"; a form
        # only accepts errors for its own fields, so file it under "model_names".
        if isinstance(error, ValidationError) and hasattr(error, "error_dict") and "models" in error.error_dict:
            error.error_dict.setdefault("model_names", []).extend(error.error_dict.pop("models"))
        super().add_error(field, error)
