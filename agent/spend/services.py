"""The monthly budget alert: managers are told when the month's spend crosses 80 % and 100 % of the budget,
once per threshold and month (a BudgetAlert row with a unique key makes a second run a no-op)."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from agent.spend import selectors
from agent.spend.models import BudgetAlert
from leads import roles
from leads import selectors as lead_selectors
from leads import services as lead_services

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
# Who manages spend: the managers' permission (activating prompt versions), held by managers and admins.
PERM_MANAGE_SPEND = roles.PERM_ACTIVATE_PROMPT


def _email(*, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, list(settings.SPEND_ALERT_EMAILS))
    except Exception:  # the in-app notification is already stored; a mail server down must not undo it
        logger.exception("spend: the budget alert email was not sent")


def spend_budget_alert_check(*, today: date | None = None) -> list[int]:
    """Alert for each threshold this month's spend has crossed and that was not alerted yet this month.
    Returns the thresholds alerted now (empty when nothing new was crossed, or the budget is 0)."""
    budget = Decimal(str(settings.SPEND_MONTHLY_BUDGET_USD))
    if budget <= 0:
        return []
    month = selectors.spend_month(today=today)
    spent = month.total_usd
    alerted: list[int] = []
    for threshold in THRESHOLDS:
        if spent * 100 < budget * threshold:
            continue
        try:
            with transaction.atomic():
                BudgetAlert.objects.create(
                    month=month.month, threshold=threshold, spent_usd=spent, budget_usd=budget
                )
                text = (
                    f"Model spend this month is ${spent:,.2f}, {threshold}% of the ${budget:,.2f} budget"
                    if threshold < 100
                    else f"Model spend this month is ${spent:,.2f}: the ${budget:,.2f} budget is used up"
                )
                lead_services.notification_notify(
                    recipients=lead_selectors.users_with_permission(perm=PERM_MANAGE_SPEND),
                    verb=f"spend.budget_{threshold}",
                    message=f"{text} (SPEND_MONTHLY_BUDGET_USD).",
                    url="/dashboard/spend/",
                )
                if settings.SPEND_ALERT_EMAILS:
                    subject = f"[DM Sales Agent] {threshold}% of the monthly model budget"
                    transaction.on_commit(partial(_email, subject=subject, body=text))
        except IntegrityError:
            continue  # another run alerted this threshold this month first
        alerted.append(threshold)
    return alerted
