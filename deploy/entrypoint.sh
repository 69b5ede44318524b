#!/bin/sh
# Container entry point: one image, one process per container.
#   web      uvicorn (WEB_CONCURRENCY workers, one SO_REUSEPORT socket each), drains streams for SHUTDOWN_TIMEOUT_SEC on SIGTERM
#   worker   Celery worker
#   beat     Celery beat (run exactly one)
#   migrate  apply database migrations, then exit
# Anything else is executed as given (e.g. `python manage.py createsuperuser`).
set -eu

case "${1:-web}" in
  web)
    # Per-process metric files of an earlier start would be added to this one's: start empty.
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
      mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
      find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
    fi
    exec python -m oneapi_site.webserver oneapi_site.asgi:application \
      --host "${HOST:-0.0.0.0}" --port "${PORT:-3000}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --no-access-log \
      --timeout-graceful-shutdown "${SHUTDOWN_TIMEOUT_SEC:-30}"
    ;;
  worker)
    exec celery -A oneapi_site worker --loglevel "${CELERY_LOG_LEVEL:-INFO}"
    ;;
  beat)
    exec celery -A oneapi_site beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --schedule "${DATA_DIR:-/data}/celerybeat-schedule"
    ;;
  migrate)
    exec python manage.py migrate --noinput
    ;;
  *)
    exec "$@"
    ;;
esac
