"""Admin for runtime options: every known key with its current value or default, validated on save."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.text import Truncator

from .models import Option, Trace
from .options import OPTION_SPECS, OptionSpec

SECRET_MASK = "•••••• (set)"


def _spec(key: str) -> OptionSpec | None:
    return OPTION_SPECS.get(key)


def _is_secret(key: str) -> bool:
    spec = _spec(key)
    return spec is not None and spec.secret


class OptionForm(forms.ModelForm):
    class Meta:
        model = Option
        fields = ("key", "value")
        widgets = {"value": forms.Textarea(attrs={"rows": 2, "cols": 80})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key = self.instance.key if not self.instance._state.adding else self.initial.get("key", "")
        spec = _spec(key)
        if "key" in self.fields:
            self.fields["key"].help_text = "A key from the list on the options page, or one imported from One API."
        if spec is None:
            return
        help_text = f"{spec.help} Default: {spec.default!r}."
        if spec.secret:
            # Secrets go in, never out: the stored value is not rendered back.
            self.initial["value"] = ""
            self.fields["value"].widget = forms.PasswordInput(render_value=False, attrs={"size": 60})
            if not self.instance._state.adding:
                help_text += " Secret: leave blank to keep the stored value."
        self.fields["value"].help_text = help_text

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        key = cleaned.get("key") or self.instance.key
        value = (cleaned.get("value") or "").strip()
        if _is_secret(key) and not value and not self.instance._state.adding:
            value = self.instance.value
        spec = _spec(key)
        if spec is not None:
            try:
                spec.parse(value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                self.add_error("value", f"Invalid value for {key}: {exc}")
        cleaned["value"] = value
        return cleaned


@admin.register(Option)
class OptionAdmin(admin.ModelAdmin):
    form = OptionForm
    list_display = ("key", "value_display", "default_display", "description")
    search_fields = ("key",)
    change_list_template = "admin/relay/option/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Option | None = None) -> tuple[str, ...]:
        # The key is the primary key: "changing" it would create a second row.
        return ("key",) if obj else ()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        stored = {o.key: o.value for o in Option.objects.filter(key__in=OPTION_SPECS)}
        known = []
        for key, spec in OPTION_SPECS.items():
            if key in stored:
                url = reverse("admin:relay_option_change", args=[quote(key)])
                value = SECRET_MASK if spec.secret and stored[key] else stored[key]
            else:
                url = (
                    reverse("admin:relay_option_add")
                    + "?"
                    + urlencode({"key": key, "value": "" if spec.secret else spec.default})
                )
                value = spec.default
            known.append(
                {
                    "key": key,
                    "url": url,
                    "value": value,
                    "is_default": key not in stored,
                    "default": spec.default,
                    "help": spec.help,
                }
            )
        return super().changelist_view(request, {**(extra_context or {}), "known_options": known})

    @admin.display(description="value", ordering="value")
    def value_display(self, obj: Option) -> str:
        if _is_secret(obj.key):
            return SECRET_MASK if obj.value else "—"
        return Truncator(obj.value).chars(80)

    @admin.display(description="default")
    def default_display(self, obj: Option) -> str:
        spec = _spec(obj.key)
        return spec.default if spec else "(not a known option)"

    @admin.display(description="description")
    def description(self, obj: Option) -> str:
        spec = _spec(obj.key)
        return spec.help if spec else ""


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    """Read-only timings of relayed requests; the consume log links here by request id."""

    list_display = (
        "created_at", "request_id", "model", "channel_id", "caller_format", "is_stream", "status_code", "retries",
        "forwarded_ms", "upstream_first_byte_ms", "first_client_byte_ms", "upstream_done_ms", "completed_ms",
    )
    list_filter = ("status_code", "is_stream", "caller_format", "created_at")
    search_fields = ("=request_id", "model")
    show_full_result_count = False
    readonly_fields = ("timeline",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="timeline (ms after receipt)")
    def timeline(self, obj: Trace) -> str:
        marks = [
            ("forwarded upstream", obj.forwarded_ms),
            ("first upstream byte", obj.upstream_first_byte_ms),
            ("first client byte", obj.first_client_byte_ms),
            ("upstream done", obj.upstream_done_ms),
            ("completed", obj.completed_ms),
        ]
        return " → ".join(f"{name} {value:.1f}" for name, value in marks if value is not None) or "-"
