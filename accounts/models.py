"""Users, groups and relay keys.

Field names follow the original One API where a migrating operator would look for them
(quota, used_quota, request_count, remain_quota, unlimited_quota, ...), but secrets are never
stored in plain text: relay keys and management access tokens are kept as SHA-256 digests.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone


class Role(models.IntegerChoices):
    GUEST = 0, "guest"
    USER = 1, "user"
    ADMIN = 10, "admin"
    ROOT = 100, "root"


class UserStatus(models.IntegerChoices):
    ENABLED = 1, "enabled"
    DISABLED = 2, "disabled"
    DELETED = 3, "deleted"


class Group(models.Model):
    """A pricing and routing group: channels serve groups, users belong to one."""

    name = models.CharField(max_length=32, unique=True)
    ratio = models.DecimalField(
        max_digits=10, decimal_places=4, default=1, help_text="Multiplies every price for users of this group."
    )
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "groups"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


DEFAULT_GROUP = "default"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        if not username:
            raise ValueError("username is required")
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("role", Role.ROOT)
        return self.create_user(username, password, **extra)


class User(AbstractBaseUser):
    username = models.CharField(max_length=30, unique=True)
    display_name = models.CharField(max_length=30, blank=True)
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    role = models.IntegerField(choices=Role.choices, default=Role.USER)
    status = models.IntegerField(choices=UserStatus.choices, default=UserStatus.ENABLED)
    group = models.ForeignKey(
        Group, on_delete=models.PROTECT, blank=True, related_name="users", help_text="Empty = the default group."
    )
    quota = models.BigIntegerField(default=0, help_text="Remaining quota (500,000 = 1 USD).")
    used_quota = models.BigIntegerField(default=0)
    request_count = models.IntegerField(default=0)
    access_token_digest = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    aff_code = models.CharField(max_length=32, unique=True, null=True, blank=True)
    inviter = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="invitees")
    github_id = models.CharField(max_length=64, blank=True, db_index=True)
    oidc_id = models.CharField(max_length=128, blank=True, db_index=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.group_id is None:
            self.group, _ = Group.objects.get_or_create(name=DEFAULT_GROUP)
        super().save(*args, **kwargs)

    # Django's auth and admin read these; they derive from role and status so that there is
    # one source of truth (the original's role/status columns).
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.status == UserStatus.ENABLED

    @property
    def is_staff(self) -> bool:
        return self.role >= Role.ADMIN

    @property
    def is_superuser(self) -> bool:
        return self.role >= Role.ROOT

    @property
    def is_admin(self) -> bool:
        return self.role >= Role.ADMIN

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return self.is_active and self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_staff


class KeyStatus(models.IntegerChoices):
    ENABLED = 1, "enabled"
    DISABLED = 2, "disabled"
    EXPIRED = 3, "expired"
    EXHAUSTED = 4, "exhausted"


class ApiKey(models.Model):
    """A relay key ("token" in the original). Only its digest is stored; the raw key is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=64, db_index=True)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    display_prefix = models.CharField(max_length=16, editable=False, help_text="First characters, to recognise the key.")
    status = models.IntegerField(choices=KeyStatus.choices, default=KeyStatus.ENABLED)
    created_at = models.DateTimeField(default=timezone.now)
    accessed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty = never expires.")
    remain_quota = models.BigIntegerField(default=0)
    unlimited_quota = models.BooleanField(default=False)
    used_quota = models.BigIntegerField(default=0)
    allowed_models = models.TextField(
        blank=True, default="", db_column="models", help_text="Comma-separated allow-list; empty = every model."
    )
    subnet = models.CharField(
        max_length=1024, blank=True, default="", help_text="Comma-separated CIDRs allowed to use the key; empty = any."
    )

    class Meta:
        db_table = "api_keys"
        ordering = ["-id"]
        verbose_name = "relay key"

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @property
    def model_list(self) -> list[str]:
        return [m.strip() for m in self.allowed_models.split(",") if m.strip()]


class RedemptionStatus(models.IntegerChoices):
    ENABLED = 1, "enabled"
    DISABLED = 2, "disabled"
    USED = 3, "used"


class Redemption(models.Model):
    """A top-up code ("redemption" in the original): redeeming it adds `quota` to the redeemer.

    Only the SHA-256 digest of the 32-hex code is stored, like relay keys: whoever reads the
    database cannot spend the codes. The raw codes are shown (and exportable) once, when a batch
    is generated; codes imported from the original are digested on import and keep working.
    """

    name = models.CharField(max_length=64, db_index=True)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    display_prefix = models.CharField(max_length=16, editable=False, help_text="First characters of the code.")
    quota = models.BigIntegerField(help_text="Quota added when redeemed (500,000 = 1 USD).")
    status = models.IntegerField(choices=RedemptionStatus.choices, default=RedemptionStatus.ENABLED)
    created_at = models.DateTimeField(default=timezone.now)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="redemptions_created"
    )
    redeemed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="redemptions_redeemed"
    )

    class Meta:
        db_table = "redemptions"
        ordering = ["-id"]
        verbose_name = "redemption code"

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"
