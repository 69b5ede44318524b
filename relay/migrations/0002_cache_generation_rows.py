from django.db import migrations


def create_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    CacheGeneration = apps.get_model("relay", "CacheGeneration")
    for name in ("keys", "config"):
        CacheGeneration.objects.get_or_create(name=name, defaults={"version": 1})


class Migration(migrations.Migration):
    dependencies = [("relay", "0001_initial")]
    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
