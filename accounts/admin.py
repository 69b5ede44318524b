"""Admin for groups, users and relay keys, and the site-wide admin settings.

Access is decided by role (admin 10, root 100), not by Django groups and permissions, so the
auth app's Group admin is hidden. An admin may manage users below its own role; root, everyone.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group as AuthGroup
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.db.models.fields import Field
from django.forms import ModelForm
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.admin import UsdField, format_usd, usd_to_quota
from billing.models import ConsumeLog, LogType

from .forms import ApiKeyAddForm, ApiKeyChangeForm, UserAddForm, UserChangeForm
from .models import ApiKey, Group, KeyStatus, Role, User, UserStatus
from .services import (
    AccountRefused,
    access_token_regenerate,
    api_key_create,
    api_key_set_status,
    user_manage,
    user_quota_adjust,
)

admin.site.site_header = "One API admin"
admin.site.site_title = "One API admin"
admin.site.index_title = "Operator console"
admin.site.unregister(AuthGroup)


def _operator(request: HttpRequest) -> User:
    # Admin views only run for a logged-in staff user.
    return cast(User, request.user)


def _save_form_fields(obj: User | ApiKey, form: ModelForm) -> None:
    """Write only what the form edits: quota counters are updated concurrently by the relay."""
    obj.save(update_fields=[f.name for f in type(obj)._meta.concrete_fields if f.name in form.fields])


@transaction.atomic
def _user_top_up(*, user: User, quota: int, by: User) -> None:
    User.objects.filter(pk=user.pk).update(quota=F("quota") + quota)
    user.refresh_from_db(fields=["quota"])
    ConsumeLog.objects.create(
        type=LogType.MANAGE,
        user=user,
        username=user.username,
        content=f"{by.username} adjusted the quota by {format_usd(quota)} ({quota:,}) in the admin",
    )


class TopUpActionForm(forms.Form):
    amount_usd = UsdField(label="Amount ($)", help_text="Added to each user's quota; negative to deduct.")
    remark = forms.CharField(max_length=200, required=False, help_text="Written to each user's log.")

    def clean_amount_usd(self) -> Any:
        amount = self.cleaned_data["amount_usd"]
        if not usd_to_quota(amount):
            raise forms.ValidationError("The amount must not be zero.")
        return amount


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "ratio", "description", "user_count")
    search_fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        return super().get_queryset(request).annotate(user_count=Count("users"))

    def get_readonly_fields(self, request: HttpRequest, obj: Group | None = None) -> tuple[str, ...]:
        # Channels name their groups in a text list: a rename would silently orphan them.
        return ("name",) if obj else ()

    @admin.display(description="users", ordering="user_count")
    def user_count(self, obj: Group) -> int:
        return obj.user_count  # type: ignore[attr-defined]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserAddForm
    list_display = (
        "id",
        "username",
        "display_name",
        "role",
        "status",
        "group",
        "quota",
        "quota_usd",
        "used_quota",
        "used_quota_usd",
        "request_count",
        "keys_link",
        "date_joined",
    )
    list_display_links = ("id", "username")
    list_filter = ("role", "status", "group")
    list_select_related = ("group",)
    search_fields = ("username", "display_name", "email")
    ordering = ("id",)
    filter_horizontal = ()
    raw_id_fields = ("inviter",)
    readonly_fields = (
        "password_link",
        "quota",
        "quota_usd",
        "used_quota",
        "used_quota_usd",
        "request_count",
        "access_token_state",
        "date_joined",
        "last_login",
    )
    fieldsets = (
        (None, {"fields": ("username", "password_link", "display_name", "email")}),
        ("Access", {"fields": ("role", "status", "group", "access_token_state")}),
        (
            "Quota",
            {"fields": (("quota", "quota_usd"), "top_up_usd", ("used_quota", "used_quota_usd"), "request_count")},
        ),
        (
            "Sign-up",
            {
                "classes": ("collapse",),
                "fields": ("aff_code", "inviter", "github_id", "oidc_id", "date_joined", "last_login"),
            },
        ),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "password1", "password2", "group", "role", "quota", "top_up_usd", "email"),
            },
        ),
    )
    actions = (
        "enable_users",
        "disable_users",
        "top_up_users",
        "promote_users",
        "demote_users",
        "regenerate_access_tokens",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).annotate(key_count=Count("api_keys"))

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        if obj.pk == _operator(request).pk:
            # Demoting or disabling yourself would lock you out of this console.
            return (*self.readonly_fields, "role", "status")
        return self.readonly_fields

    def formfield_for_choice_field(self, db_field: Field, request: HttpRequest, **kwargs: Any) -> Any:
        operator = _operator(request)
        if db_field.name == "role" and not operator.is_superuser:
            kwargs["choices"] = [(value, label) for value, label in Role.choices if value < operator.role]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def _may_manage(self, request: HttpRequest, obj: User | None) -> bool:
        operator = _operator(request)
        if obj is None or operator.is_superuser or obj.pk == operator.pk:
            return True
        return obj.role < operator.role

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_manage(request, obj)

    def _manageable(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        operator = _operator(request)
        if operator.is_superuser:
            return queryset
        return queryset.filter(Q(role__lt=operator.role) | Q(pk=operator.pk))

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        _save_form_fields(obj, form)
        if isinstance(form, UserChangeForm) and form.top_up_quota:
            _user_top_up(user=obj, quota=form.top_up_quota, by=_operator(request))

    def _set_status(self, request: HttpRequest, queryset: QuerySet[User], status: UserStatus) -> int:
        changed = 0
        # One save per user (not queryset.update) so the relay's key cache hears about it.
        for user in self._manageable(request, queryset).exclude(pk=_operator(request).pk).exclude(status=status):
            user.status = status
            user.save(update_fields=["status"])
            changed += 1
        return changed

    @admin.action(description="Enable selected users")
    def enable_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = self._set_status(request, queryset, UserStatus.ENABLED)
        self.message_user(request, f"Enabled {count} user(s).", messages.SUCCESS)

    @admin.action(description="Disable selected users")
    def disable_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = self._set_status(request, queryset, UserStatus.DISABLED)
        self.message_user(request, f"Disabled {count} user(s) (never yourself).", messages.SUCCESS)

    @admin.action(description="Top up selected users…")
    def top_up_users(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        """An intermediate page asks for the amount; its form posts back to this action with `apply`."""
        users = list(self._manageable(request, queryset))
        form = TopUpActionForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            quota = usd_to_quota(form.cleaned_data["amount_usd"])
            done = 0
            for user in users:
                try:
                    user_quota_adjust(user=user, quota=quota, by=_operator(request), remark=form.cleaned_data["remark"])
                    done += 1
                except AccountRefused as exc:
                    self.message_user(request, f"{user.username}: {exc.message}", messages.ERROR)
            self.message_user(request, f"Adjusted the quota of {done} user(s) by {format_usd(quota)}.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Top up users",
            "users": users,
            "form": form,
            "opts": self.model._meta,
            "action_name": "top_up_users",
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/accounts/user/top_up.html", context)

    def _set_role(self, request: HttpRequest, queryset: QuerySet[User], action: str) -> None:
        done = 0
        for user in queryset:
            try:
                user_manage(operator=_operator(request), target=user, action=action)
                done += 1
            except AccountRefused as exc:
                self.message_user(request, f"{user.username}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{action.capitalize()}d {done} user(s).", messages.SUCCESS)

    @admin.action(description="Promote selected users to admin (root only)")
    def promote_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_role(request, queryset, "promote")

    @admin.action(description="Demote selected admins to common users")
    def demote_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._set_role(request, queryset, "demote")

    @admin.action(description="Regenerate management access tokens (shown once)")
    def regenerate_access_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in self._manageable(request, queryset):
            token = access_token_regenerate(user=user)
            self.message_user(
                request,
                format_html(
                    "Access token for {} (copy it now, it will not be shown again): <code>{}</code>",
                    user.username,
                    token,
                ),
                messages.SUCCESS,
            )

    @admin.display(description="password")
    def password_link(self, obj: User) -> str:
        url = reverse("admin:auth_user_password_change", args=[obj.pk])
        return format_html('<a href="{}">Change password</a>', url)

    @admin.display(description="quota ($)", ordering="quota")
    def quota_usd(self, obj: User) -> str:
        return format_usd(obj.quota)

    @admin.display(description="used ($)", ordering="used_quota")
    def used_quota_usd(self, obj: User) -> str:
        return format_usd(obj.used_quota)

    @admin.display(description="relay keys", ordering="key_count")
    def keys_link(self, obj: User) -> str:
        url = reverse("admin:accounts_apikey_changelist") + f"?user__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(obj, "key_count", "keys"))

    @admin.display(description="management access token")
    def access_token_state(self, obj: User) -> str:
        return "set (regenerate it with the list action)" if obj.access_token_digest else "not set"


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("expired", "expired"), ("expiring", "expires later"), ("never", "never expires")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        match self.value():
            case "expired":
                return queryset.filter(expires_at__lte=now)
            case "expiring":
                return queryset.filter(expires_at__gt=now)
            case "never":
                return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyChangeForm
    add_form = ApiKeyAddForm
    list_display = (
        "id",
        "name",
        "user",
        "display_prefix",
        "status",
        "remain_quota",
        "remain_usd",
        "used_quota",
        "used_usd",
        "expires_at",
        "accessed_at",
        "created_at",
    )
    list_display_links = ("id", "name")
    list_filter = ("status", "unlimited_quota", ExpiryFilter)
    list_select_related = ("user",)
    search_fields = ("name", "display_prefix", "user__username")
    autocomplete_fields = ("user",)
    readonly_fields = (
        "user",
        "display_prefix",
        "remain_quota",
        "remain_usd",
        "used_quota",
        "used_usd",
        "created_at",
        "accessed_at",
    )
    fieldsets = (
        (None, {"fields": ("user", "name", "display_prefix", "status")}),
        (
            "Quota",
            {"fields": ("unlimited_quota", ("remain_quota", "remain_usd"), "adjust_usd", ("used_quota", "used_usd"))},
        ),
        ("Limits", {"fields": ("expires_at", "allowed_models", "subnet")}),
        ("Activity", {"fields": ("created_at", "accessed_at")}),
    )
    add_fieldsets = (
        (None, {"fields": ("user", "name")}),
        ("Quota", {"fields": ("remain_quota", "remain_quota_usd", "unlimited_quota")}),
        ("Limits", {"fields": ("expires_at", "allowed_models", "subnet")}),
    )
    actions = ("enable_keys", "disable_keys")

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm, change: bool) -> None:
        if change:
            _save_form_fields(obj, form)
            if isinstance(form, ApiKeyChangeForm) and form.adjust_quota:
                ApiKey.objects.filter(pk=obj.pk).update(remain_quota=F("remain_quota") + form.adjust_quota)
                obj.refresh_from_db(fields=["remain_quota"])
            return
        created, raw = api_key_create(
            user=obj.user,
            name=obj.name,
            remain_quota=obj.remain_quota,
            unlimited_quota=obj.unlimited_quota,
            expires_at=obj.expires_at,
            allowed_models=obj.allowed_models,
            subnet=obj.subnet,
        )
        # The admin goes on with `obj` (change log entry, redirect): make it the created row.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db
        messages.success(
            request, format_html("New key (copy it now, it will not be shown again): <code>{}</code>", raw)
        )

    def _set_status(self, request: HttpRequest, queryset: QuerySet[ApiKey], status: KeyStatus) -> None:
        keys = list(queryset.exclude(status=status))
        for api_key in keys:
            api_key_set_status(api_key=api_key, status=status)
        self.message_user(request, f"Set {len(keys)} key(s) to {status.label}.", messages.SUCCESS)

    @admin.action(description="Enable selected keys")
    def enable_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._set_status(request, queryset, KeyStatus.ENABLED)

    @admin.action(description="Disable selected keys")
    def disable_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        self._set_status(request, queryset, KeyStatus.DISABLED)

    @admin.display(description="remaining ($)", ordering="remain_quota")
    def remain_usd(self, obj: ApiKey) -> str:
        return "unlimited" if obj.unlimited_quota else format_usd(obj.remain_quota)

    @admin.display(description="used ($)", ordering="used_quota")
    def used_usd(self, obj: ApiKey) -> str:
        return format_usd(obj.used_quota)


from . import admin_redemptions  # noqa: E402,F401  (registers the redemption code admin)
