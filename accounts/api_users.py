"""Admin `/api` routes: users (CRUD, search, manage), admin top-up, groups, models; root: options.

Role rules are the original's: an admin sees and changes only users below its own role (root,
everyone); nobody creates or promotes a user to its own role or higher unless it is root.
Another admin's or root's row answers 403 to an admin, whether it is read, edited or deleted.
"""

from __future__ import annotations

from typing import cast

from django.db import transaction
from django.db.models import F, Q, QuerySet
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import Channel
from oneapi_site.api_envelope import ApiFailure, object_id, ok, page_bounds
from relay.models import Option
from relay.options import OPTION_SPECS

from .api_serializers import (
    AdminTopUpSerializer,
    ManageSerializer,
    OptionUpdateSerializer,
    UserCreateSerializer,
    UserUpdateSerializer,
)
from .authentication import IsAdmin, IsRoot
from .models import Group, Role, User, UserStatus
from .serializers import user_json
from .services import AccountRefused, user_manage, user_quota_adjust


def _operator(request: Request) -> User:
    return cast(User, request.user)


def _visible_users() -> QuerySet[User]:
    return User.objects.select_related("group").exclude(status=UserStatus.DELETED).order_by("-id")


def target_or_refuse(operator: User, user_id: int) -> User:
    """The user if `operator` may manage it: 404 when missing, 403 when its role is too high."""
    target = User.objects.select_related("group").filter(pk=user_id).first()
    if target is None or target.status == UserStatus.DELETED:
        raise exceptions.NotFound("no such user")
    if operator.role <= target.role and operator.role < Role.ROOT and target.pk != operator.pk:
        raise exceptions.PermissionDenied("no permission to see or change a user of the same or a higher role")
    return target


def _refuse_role(operator: User, role: int) -> None:
    if role >= operator.role and operator.role < Role.ROOT:
        raise exceptions.PermissionDenied("no permission to give a role equal to or higher than your own")


def _paged(request: Request, users: QuerySet[User]) -> Response:
    offset, limit = page_bounds(request)
    return ok([user_json(u) for u in users[offset : offset + limit]], total=users.count())


class UserCollectionView(APIView):
    """`GET /api/user/` lists, `POST` creates, `PUT` edits by `id`."""

    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return _paged(request, _visible_users())

    def post(self, request: Request) -> Response:
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _refuse_role(_operator(request), data["role"])
        extra = {"group": Group.objects.get(name=data["group"])} if data["group"] else {}
        user = User.objects.create_user(
            data["username"],
            data["password"],
            display_name=data["display_name"] or data["username"],
            email=data["email"],
            role=data["role"],
            quota=data["quota"],
            **extra,
        )
        return ok(user_json(user))

    def put(self, request: Request) -> Response:
        operator = _operator(request)
        target = target_or_refuse(operator, object_id(request))
        serializer = UserUpdateSerializer(data=request.data, partial=True, context={"target": target})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "role" in data and data["role"] != target.role:
            if target.pk == operator.pk:
                raise ApiFailure("you cannot change your own role")
            _refuse_role(operator, data["role"])
        with transaction.atomic():
            fields = []
            for name in ("username", "display_name", "email", "role"):
                if name in data:
                    setattr(target, name, data[name])
                    fields.append(name)
            if "group" in data:
                target.group = Group.objects.get(name=data["group"])
                fields.append("group")
            if "password" in data:
                target.set_password(data["password"])
                fields.append("password")
            if fields:
                target.save(update_fields=fields)
            if "quota" in data:
                # The relay spends concurrently: apply the difference from what we read, not the value.
                User.objects.filter(pk=target.pk).update(quota=F("quota") + (data["quota"] - target.quota))
                target.refresh_from_db(fields=["quota"])
        return ok(user_json(target))


class UserSearchView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        keyword = request.query_params.get("keyword", "").strip()
        users = _visible_users()
        if keyword:
            condition = Q(username__icontains=keyword) | Q(display_name__icontains=keyword) | Q(email__icontains=keyword)
            if keyword.isdigit():
                condition |= Q(pk=int(keyword))
            users = users.filter(condition)
        return _paged(request, users)


class UserDetailView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request, user_id: int) -> Response:
        return ok(user_json(target_or_refuse(_operator(request), user_id)))

    def delete(self, request: Request, user_id: int) -> Response:
        operator = _operator(request)
        target = target_or_refuse(operator, user_id)
        try:
            user_manage(operator=operator, target=target, action="delete")
        except AccountRefused as exc:
            if exc.forbidden:
                raise exceptions.PermissionDenied(exc.message) from None
            raise ApiFailure(exc.message) from None
        return ok()


class UserManageView(APIView):
    """`POST /api/user/manage {"username", "action"}`: disable, enable, delete, promote, demote."""

    permission_classes = [IsAdmin]

    def post(self, request: Request) -> Response:
        serializer = ManageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        users = User.objects.exclude(status=UserStatus.DELETED)
        target = users.filter(pk=data["id"]).first() if data.get("id") else users.filter(username=data["username"]).first()
        if target is None:
            raise exceptions.NotFound("no such user")
        try:
            target = user_manage(operator=_operator(request), target=target, action=data["action"])
        except AccountRefused as exc:
            if exc.forbidden:
                raise exceptions.PermissionDenied(exc.message) from None
            raise ApiFailure(exc.message) from None
        return ok({"role": target.role, "status": target.status})


class AdminTopUpView(APIView):
    """`POST /api/topup {"user_id", "quota", "remark"}`: credit (or debit) a user's quota."""

    permission_classes = [IsAdmin]

    def post(self, request: Request) -> Response:
        serializer = AdminTopUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        operator = _operator(request)
        target = target_or_refuse(operator, data["user_id"])
        try:
            user_quota_adjust(user=target, quota=data["quota"], by=operator, remark=data["remark"])
        except AccountRefused as exc:
            raise ApiFailure(exc.message) from None
        return ok(user_json(target))


class GroupListView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        return ok(list(Group.objects.order_by("name").values_list("name", flat=True)))


class ModelsView(APIView):
    """`GET /api/models`: models served by configured channels, per channel type id (as the original)."""

    permission_classes = [IsAdmin]

    def get(self, request: Request) -> Response:
        by_type: dict[str, list[str]] = {}
        for channel in Channel.objects.only("type", "model_names", "model_mapping"):
            models = by_type.setdefault(str(channel.type), [])
            models.extend(m for m in channel.served_models() if m not in models)
        return ok({key: sorted(value) for key, value in sorted(by_type.items(), key=lambda kv: int(kv[0]))})


class OptionView(APIView):
    """`GET /api/option/` every known option except secrets; `PUT {key, value}` validated."""

    permission_classes = [IsRoot]

    def get(self, request: Request) -> Response:
        stored = dict(Option.objects.values_list("key", "value"))
        data = [
            {"key": key, "value": stored.get(key, spec.default)} for key, spec in OPTION_SPECS.items() if not spec.secret
        ]
        return ok(data)

    def put(self, request: Request) -> Response:
        serializer = OptionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, value = serializer.validated_data["key"], serializer.validated_data["value"]
        Option.objects.update_or_create(key=key, defaults={"value": value})
        return ok()
