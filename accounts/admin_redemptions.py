"""Admin for redemption codes: generate a batch (up to 100, shown and downloadable once), export,
enable and disable. Codes are stored as digests, so a later export lists only their prefixes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast
from urllib.parse import quote

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from billing.admin import UsdField, format_usd, usd_to_quota

from .models import Redemption, RedemptionStatus, User
from .redemptions import MAX_BATCH, redemptions_create, redemptions_csv


class GenerateForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="A label for the batch (e.g. “March promo”).")
    amount_usd = UsdField(label="Value of each code ($)", min_value=Decimal("0.000002"), max_value=Decimal(10**9))
    count = forms.IntegerField(min_value=1, max_value=MAX_BATCH, initial=10, help_text=f"At most {MAX_BATCH}.")


class RedemptionChangeForm(forms.ModelForm):
    class Meta:
        model = Redemption
        fields = ("name", "status")

    def clean_status(self) -> int:
        status = self.cleaned_data["status"]
        if self.instance.status == RedemptionStatus.USED and status != RedemptionStatus.USED:
            raise forms.ValidationError("This code has been used; it cannot be enabled again.")
        if self.instance.status != RedemptionStatus.USED and status == RedemptionStatus.USED:
            raise forms.ValidationError("A code becomes used only when someone redeems it; disable it instead.")
        return status


def _csv_response(csv_text: str, filename: str) -> HttpResponse:
    response = HttpResponse(csv_text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    form = RedemptionChangeForm
    list_display = ("id", "name", "display_prefix", "value", "status", "created_at", "created_by", "redeemed_by", "redeemed_at")
    list_display_links = ("id", "name")
    list_filter = ("status", "created_at")
    list_select_related = ("created_by", "redeemed_by")
    search_fields = ("name", "=display_prefix", "=redeemed_by__username")
    readonly_fields = ("display_prefix", "value", "created_at", "created_by", "redeemed_at", "redeemed_by")
    fields = ("name", "status", "display_prefix", "value", "created_at", "created_by", "redeemed_at", "redeemed_by")
    actions = ("export_csv", "disable_codes", "enable_codes")

    @admin.display(description="value", ordering="quota")
    def value(self, obj: Redemption) -> str:
        return f"{format_usd(obj.quota)} ({obj.quota:,} quota)"

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Adding means generating a batch: the raw codes exist only in this response."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)
        form = GenerateForm(request.POST or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Generate redemption codes",
            "opts": self.model._meta,
            "form": form,
        }
        if request.method == "POST" and form.is_valid():
            created = redemptions_create(
                name=form.cleaned_data["name"],
                quota=usd_to_quota(form.cleaned_data["amount_usd"]),
                count=form.cleaned_data["count"],
                created_by=cast(User, request.user),
            )
            csv_text = redemptions_csv(created)
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            context.update(
                {
                    "title": f"Generated {len(created)} redemption code(s)",
                    "codes": [code for _, code in created],
                    "value": format_usd(created[0][0].quota),
                    "csv_href": "data:text/csv;charset=utf-8," + quote(csv_text),
                    "csv_name": f"redemptions-{stamp}.csv",
                }
            )
            messages.success(request, "Copy or download the codes now: they are not shown again.")
        response = TemplateResponse(request, "admin/accounts/redemption/generate.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Export selected codes as CSV (prefixes only)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Redemption]) -> HttpResponse:
        rows = queryset.select_related("redeemed_by").order_by("id")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return _csv_response(redemptions_csv((row, None) for row in rows), f"redemptions-{stamp}.csv")

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Redemption], status: RedemptionStatus) -> None:
        changed = queryset.exclude(status=RedemptionStatus.USED).exclude(status=status).update(status=status)
        self.message_user(request, f"Set {changed} unused code(s) to {status.label}.", messages.SUCCESS)

    @admin.action(description="Disable selected unused codes")
    def disable_codes(self, request: HttpRequest, queryset: QuerySet[Redemption]) -> None:
        self._set_status(request, queryset, RedemptionStatus.DISABLED)

    @admin.action(description="Enable selected unused codes")
    def enable_codes(self, request: HttpRequest, queryset: QuerySet[Redemption]) -> None:
        self._set_status(request, queryset, RedemptionStatus.ENABLED)
