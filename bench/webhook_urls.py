"""The app's URLs plus two baselines on the same stack (middleware, settings, gunicorn), for bench_webhook.py:

* /bench/bare/: a bare Django JSON view (no database, no model): the old yardstick, kept for continuity.
* /bench/floor/: the durable floor, what any correct synchronous receiver must do: check the secret, parse
  the JSON, insert the lead's message (its open conversation found by subscriber in the same INSERT) and
  commit, call the model (one POST through a reused HTTP client), insert the reply and commit, answer a
  Dynamic Block v2 body. Two statements, two durable commits, one model round trip, nothing else: no
  dedupe, no history, no examples, no takeover lock, no delivery claim. It lives here, not in the app.
"""

import hmac
import json
import threading

import httpx
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns
from leads.models import Message

_local = threading.local()
_columns: dict[str, object] = {}


def _http() -> httpx.Client:
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(base_url=settings.OPENAI_BASE_URL or "", timeout=30)
    return client


def _insert_sql() -> tuple[str, str, list[str]]:
    """INSERT … SELECT for the lead's message and INSERT … VALUES for the reply, every column of the table
    (others' columns get their model defaults), built once per process."""
    if not _columns:
        names, defaults = [], []
        for field in Message._meta.local_concrete_fields:
            if field is Message._meta.auto_field or field.generated:
                continue
            names.append(field.column)
            defaults.append(
                field.get_db_prep_save(field.get_default(), connection) if field.has_default() else None
            )
        _columns.update(names=names, defaults=defaults)
    names: list[str] = _columns["names"]  # type: ignore[assignment]
    quoted = ", ".join(f'"{n}"' for n in names)
    select = ", ".join(
        "c.id" if n == "conversation_id" else "now()" if n == "created_at" else "%s" for n in names
    )
    values = ", ".join("now()" if n == "created_at" else "%s" for n in names)
    inbound = (
        f"INSERT INTO messages ({quoted}) SELECT {select} FROM conversations c "
        "JOIN leads l ON l.id = c.lead_id WHERE l.manychat_subscriber_id = %s AND c.status = 'open' "
        "RETURNING id, conversation_id"
    )
    reply = f"INSERT INTO messages ({quoted}) VALUES ({values}) RETURNING id"
    return inbound, reply, names


def _params(names: list[str], overrides: dict[str, object], *, skip: tuple[str, ...]) -> list[object]:
    defaults = dict(zip(names, _columns["defaults"], strict=True))  # type: ignore[arg-type]
    return [overrides.get(n, defaults[n]) for n in names if n not in skip]


@csrf_exempt
def bare(request):
    return JsonResponse({"version": "v2", "content": {"messages": []}})


@csrf_exempt
def floor(request):
    secret = request.headers.get("X-Webhook-Secret", "")
    if not hmac.compare_digest(secret.encode(), settings.MANYCHAT_WEBHOOK_SECRET.encode()):
        return HttpResponse(status=401)
    body = json.loads(request.body)
    inbound_sql, reply_sql, names = _insert_sql()
    with connection.cursor() as cursor:  # autocommit: each INSERT is its own durable transaction
        cursor.execute(
            inbound_sql,
            [
                *_params(
                    names, {"role": "lead", "text": body["text"]}, skip=("conversation_id", "created_at")
                ),
                str(body["subscriber_id"]),
            ],
        )
        row = cursor.fetchone()
        if row is None:
            return HttpResponse(status=404)
        message_id, conversation_id = row
        answer = _http().post(
            "/chat/completions",
            json={"model": "fake-gpt", "messages": [{"role": "user", "content": body["text"]}]},
            headers={"Authorization": f"Bearer {settings.OPENAI_API_KEY}"},
        )
        text = json.loads(answer.json()["choices"][0]["message"]["content"])["reply"]
        cursor.execute(
            reply_sql,
            _params(
                names,
                {
                    "conversation_id": conversation_id,
                    "role": "agent",
                    "text": text,
                    "in_reply_to_id": message_id,
                    "delivery_status": "returned",
                },
                skip=("created_at",),
            ),
        )
    return JsonResponse(
        {"version": "v2", "content": {"type": "instagram", "messages": [{"type": "text", "text": text}]}}
    )


urlpatterns = [
    path("bench/bare/", bare, name="bench-bare"),
    path("bench/floor/", floor, name="bench-floor"),
    *app_urlpatterns,
]
