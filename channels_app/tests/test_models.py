from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from channels_app.models import Channel


@pytest.mark.django_db
@pytest.mark.parametrize("mapping", [["a"], {"a": 1}, {"a": ""}, "text"])
def test_clean_rejects_a_mapping_that_is_not_an_object_of_names(mapping):
    channel = Channel(type=1, name="x", key="k", model_names="m", groups="default", model_mapping=mapping)
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert "model_mapping" in caught.value.message_dict


@pytest.mark.django_db
def test_clean_refuses_unsupported_types_and_unknown_groups():
    channel = Channel(type=15, name="x", key="k", model_names="m", groups="nope")
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert {"type", "groups"} <= set(caught.value.message_dict)


@pytest.mark.django_db
def test_mapping_names_are_served_and_abilities_follow_the_channel():
    channel = Channel.objects.create(type=1, name="x", key="k", model_names="a", groups="default", model_mapping={"b": "real-b"})
    assert sorted(channel.abilities.values_list("model", flat=True)) == ["a", "b"]
    channel.model_names = "c"
    channel.model_mapping = {}
    channel.status = 2
    channel.save()
    assert list(channel.abilities.values_list("model", "enabled")) == [("c", False)]
