# The web, worker and beat image: one image, three commands (see compose.yaml and the README).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_DEBUG=0 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/dmagent-prometheus-web

WORKDIR /app

RUN useradd --system --create-home --home-dir /home/app app

COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY manage.py pyproject.toml ./
COPY config ./config
COPY leads ./leads
COPY agent ./agent
COPY prompts ./prompts
COPY training ./training
COPY templates ./templates
COPY static ./static
COPY fixtures ./fixtures

# collectstatic needs settings that pass the production checks; these build-time values never run the app.
RUN DJANGO_SECRET_KEY=build-only-key-not-used-at-run-time-0123456789abcdefghij \
    MANYCHAT_WEBHOOK_SECRET=build-only \
    python manage.py collectstatic --noinput -v 0

USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
