from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import ChargeStatus, ConsumeLog, RequestCharge
from billing.tasks import release_stale_holds


@pytest.mark.django_db
def test_stale_holds_are_charged_at_the_hold_once(make_user, make_key):
    user = make_user(quota=900)  # the hold of 100 already left the user's quota
    key, _ = make_key(user, remain_quota=400)
    old = RequestCharge.objects.create(request_id="old", user=user, api_key=key, held_quota=100)
    RequestCharge.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    RequestCharge.objects.create(request_id="running", user=user, api_key=key, held_quota=50)

    assert release_stale_holds() == 1
    assert release_stale_holds() == 0
    old.refresh_from_db()
    assert (old.status, old.quota) == (ChargeStatus.SETTLED, 100)
    assert RequestCharge.objects.get(request_id="running").status == ChargeStatus.HELD
    user.refresh_from_db()
    key.refresh_from_db()
    assert (user.quota, user.used_quota, key.remain_quota, key.used_quota) == (900, 100, 400, 100)
    assert ConsumeLog.objects.get(request_id="old").quota == 100
