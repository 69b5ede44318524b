"""Redeeming is one conditional UPDATE: racing redeemers of one code are credited exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections

from accounts.models import Redemption, RedemptionStatus, User
from accounts.redemptions import RedeemError, redemption_redeem, redemptions_create
from billing.models import ConsumeLog, LogType


@pytest.mark.django_db(transaction=True)
def test_concurrent_redeems_credit_once(make_user) -> None:  # type: ignore[no-untyped-def]
    users = [make_user(quota=0) for _ in range(6)]
    [(_, code)] = redemptions_create(name="race", quota=1000, count=1, created_by=None)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(users))

    def redeem(user: User) -> None:
        try:
            barrier.wait()
            redemption_redeem(user=user, code=code)
            outcomes.append("ok")
        except RedeemError as exc:
            outcomes.append(exc.message)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=redeem, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 1, outcomes
    assert sum(User.objects.filter(pk__in=[u.pk for u in users]).values_list("quota", flat=True)) == 1000
    assert Redemption.objects.get().status == RedemptionStatus.USED
    assert ConsumeLog.objects.filter(type=LogType.TOPUP).count() == 1


@pytest.mark.django_db
def test_codes_are_case_insensitive_and_trimmed(make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user(quota=0)
    [(_, code)] = redemptions_create(name="x", quota=5, count=1, created_by=None)
    redemption_redeem(user=user, code=f"  {code.upper()} ")
    user.refresh_from_db()
    assert user.quota == 5


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "message"), [({"count": 0}, "count"), ({"count": 101}, "count"), ({"quota": 0}, "quota"), ({"name": " "}, "name")])
def test_batch_limits(fields: dict, message: str) -> None:
    arguments = {"name": "x", "quota": 5, "count": 1, "created_by": None, **fields}
    with pytest.raises(ValueError, match=message):
        redemptions_create(**arguments)
    assert not Redemption.objects.exists()
