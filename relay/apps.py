from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Relay"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (bumps cache generations when cached tables change)
