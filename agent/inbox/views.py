"""Dashboard pages of the inbox: the work queues and the conversation view. Thin: parse, call, render."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.functional import cached_property
from django.views import View

from agent.inbox import drafts, selectors, services
from agent.spend import selectors as spend_selectors
from config.errors import ServiceError
from leads import roles
from leads.models import Channel, DeliveryStatus, LeadStatus
from training import candidates

PAGE_SIZE = 25


class QueueFilterForm(forms.Form):
    queue = forms.ChoiceField(
        choices=[(q.value, label) for q, label in selectors.QUEUE_LABELS.items()], required=False
    )
    q = forms.CharField(required=False, max_length=200)
    channel = forms.ChoiceField(choices=[("", "Any channel"), *Channel.choices], required=False)
    bot = forms.ChoiceField(
        choices=[
            ("", "Any bot state"),
            *[(s.value, label) for s, label in selectors.BOT_STATE_LABELS.items()],
        ],
        required=False,
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *LeadStatus.choices], required=False)
    assignee = forms.CharField(required=False, max_length=20)
    version = forms.IntegerField(required=False, min_value=1)
    sort = forms.ChoiceField(choices=[(key, key) for key in selectors.SORTS], required=False)

    def clean_assignee(self) -> str:
        value = self.cleaned_data["assignee"].strip()
        if value not in ("", "none") and not value.isdigit():
            raise ValidationError("Pick a person, or none.")
        return value


def _filters(form: QueueFilterForm) -> tuple[selectors.Queue, selectors.InboxFilters]:
    data = form.cleaned_data if form.is_valid() else {}
    queue = selectors.Queue(data.get("queue") or selectors.Queue.NEEDS_PERSON)
    return queue, selectors.InboxFilters(
        channel=data.get("channel", ""),
        bot=data.get("bot", ""),
        status=data.get("status", ""),
        assignee=data.get("assignee", ""),
        version=data.get("version"),
        search=data.get("q", ""),
        sort=data.get("sort", ""),
    )


class _CountedPaginator(Paginator):
    def __init__(self, *args, known_count: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.known_count = known_count

    @cached_property
    def count(self) -> int:
        return self.known_count if self.known_count is not None else super().count


class InboxView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_LEADS

    def get(self, request):
        form = QueueFilterForm(request.GET or None)
        queue, filters = _filters(form)
        leads = selectors.inbox_queue(queue=queue, user=request.user, filters=filters)
        counts = selectors.inbox_counts(user=request.user)
        # An unfiltered queue's size is its count: the paginator need not count it again.
        known = counts[queue.value] if filters == selectors.InboxFilters(sort=filters.sort) else None
        page = _CountedPaginator(leads, PAGE_SIZE, known_count=known).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        base = query.copy()
        base.pop("sort", None)
        current_sort = (
            filters.sort if filters.sort in selectors.SORTS else selectors.DEFAULT_SORT.get(queue, "-last")
        )
        sort_links = {}
        for key in ("name", "status", "assignee", "waiting", "last"):
            link = base.copy()
            link["sort"] = f"-{key}" if current_sort == key else key
            arrow = "↑" if current_sort == key else ("↓" if current_sort == f"-{key}" else "")
            sort_links[key] = {"query": link.urlencode(), "arrow": arrow}
        queues = []
        for key, label in selectors.QUEUE_LABELS.items():
            link = base.copy()
            link["queue"] = key.value
            queues.append(
                {"key": key.value, "label": label, "count": counts[key.value], "query": link.urlencode()}
            )
        return render(
            request,
            "inbox/inbox.html",
            {
                "form": form,
                "queue": queue.value,
                "queue_label": selectors.QUEUE_LABELS[queue],
                "queues": queues,
                "page": page,
                "leads": page.object_list,
                "query": query.urlencode(),
                "sort_links": sort_links,
                "sort": current_sort,
                "choices": selectors.inbox_filter_choices(),
                "bot_labels": {s.value: label for s, label in selectors.BOT_STATE_LABELS.items()},
            },
        )


def _lead_or_404(lead_id: int):
    lead = selectors.inbox_lead_get(lead_id=lead_id)
    if lead is None:
        raise Http404("No such lead.")
    return lead


def _thread_context(lead) -> dict:
    items = selectors.lead_thread(lead=lead)
    return {
        "lead": lead,
        "items": items,
        "thread_version": f"{len(items)}:"
        + ",".join(f"{i.id}{i.message.delivery_status}" for i in items[-20:] if i.message is not None),
        "window_prefix": services.WINDOW_CLOSED_PREFIX,
        "pending": DeliveryStatus.PENDING,
    }


DRAFT_MODE_CHOICES = {"on": True, "off": False, "default": None}


class ConversationView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_LEADS

    def get(self, request, lead_id: int):
        lead = _lead_or_404(lead_id)
        conversation_ids = list(lead.conversations.values_list("id", flat=True))
        context = _thread_context(lead)
        context.update(
            {
                "candidates": list(candidates.correction_candidate_list(conversation_ids=conversation_ids)),
                "people": selectors.inbox_filter_choices()["people"],
                "live_chat_url": getattr(lead, "live_chat_url", "") or "",
                "poll_ms": int(settings.INBOX_POLL_SECONDS * 1000),
                "spend": spend_selectors.lead_spend_of(  # the thread holds every message: no query
                    messages=[item.message for item in context["items"] if item.message is not None]
                ),
                "drafts_on": drafts.lead_drafts_on(lead=lead),
                "team_drafts": settings.AGENT_DRAFT_MODE,
                "shadow_mode": settings.AGENT_SHADOW_MODE,
            }
        )
        return render(request, "inbox/conversation.html", context)


class ThreadFragmentView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The thread alone, for the conversation view's polling."""

    permission_required = roles.PERM_VIEW_LEADS

    def get(self, request, lead_id: int):
        lead = _lead_or_404(lead_id)
        return render(request, "inbox/_thread.html", _thread_context(lead))


class ConversationActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """send / note / assign / take_over / hand_back from the conversation view; each is one service call."""

    permission_required = roles.PERM_CHANGE_LEAD
    ACTIONS = ("send", "note", "assign", "take_over", "hand_back", "draft_mode")

    def post(self, request, lead_id: int, action: str):
        if action not in self.ACTIONS:
            raise Http404("No such action.")
        lead = _lead_or_404(lead_id)
        user = request.user
        try:
            if action == "send":
                services.inbox_message_send(lead=lead, user=user, text=request.POST.get("text", ""))
                messages.success(request, "Reply sent to the lead.")
            elif action == "note":
                services.inbox_note_add(lead=lead, user=user, text=request.POST.get("text", ""))
                messages.success(request, "Note added (the lead does not see it).")
            elif action == "assign":
                raw = request.POST.get("assignee_id", "")
                assignee_id = user.pk if raw == "me" else (int(raw) if raw.isdigit() else None)
                services.inbox_assign(lead=lead, user=user, assignee_id=assignee_id)
                messages.success(request, "Assignee updated.")
            elif action == "draft_mode":
                choice = request.POST.get("draft_mode", "")
                if choice not in DRAFT_MODE_CHOICES:
                    raise ValidationError("Pick on, off or the team default.")
                drafts.inbox_draft_mode_set(lead=lead, user=user, draft_mode=DRAFT_MODE_CHOICES[choice])
                messages.success(request, "Draft mode updated.")
            elif action == "take_over":
                services.inbox_take_over(lead=lead, user=user)
                messages.success(request, "You handle this lead now: the bot stays silent.")
            else:
                services.inbox_hand_back(lead=lead, user=user)
                messages.success(request, "Handed back: the bot answers this lead again.")
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard:inbox_conversation", lead_id=lead.pk)


class DraftActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Send (as written or edited) or discard an agent draft from the conversation view."""

    permission_required = roles.PERM_CHANGE_LEAD

    def post(self, request, lead_id: int, draft_id: int, action: str):
        if action not in ("send", "discard"):
            raise Http404("No such action.")
        lead = _lead_or_404(lead_id)
        try:
            if action == "send":
                sent = drafts.inbox_draft_send(
                    draft_id=draft_id, user=request.user, text=request.POST.get("text"), lead=lead
                )
                edited = sent.pk != draft_id
                messages.success(
                    request, "Edited draft sent to the lead." if edited else "Draft sent to the lead."
                )
            else:
                drafts.inbox_draft_discard(draft_id=draft_id, user=request.user, lead=lead)
                messages.success(request, "Draft discarded.")
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard:inbox_conversation", lead_id=lead.pk)


class CandidateActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_SUBMIT_EXAMPLE

    def post(self, request, candidate_id: int, action: str):
        candidate = candidates.correction_candidate_get(candidate_id=candidate_id)
        if candidate is None or action not in ("submit", "dismiss"):
            raise Http404("No such candidate.")
        try:
            if action == "submit":
                example = services.inbox_candidate_submit(
                    candidate=candidate,
                    user=request.user,
                    feedback=request.POST.get("feedback", ""),
                    expected_response=request.POST.get("expected_response"),
                )
                messages.success(request, f"Correction #{example.pk} sent to the review queue.")
            else:
                services.inbox_candidate_dismiss(candidate=candidate, user=request.user)
                messages.success(request, "Correction candidate dismissed.")
        except ValidationError as exc:
            for text in exc.messages:
                messages.error(request, text)
        except (ServiceError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        return redirect("dashboard:inbox_conversation", lead_id=candidate.conversation.lead_id)
