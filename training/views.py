from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from leads import roles
from leads.models import Lead, Message, MessageRole
from leads.selectors import lead_list, lead_transcript
from prompts.selectors import active_prompt_version
from training import selectors, services
from training.forms import ConversationExampleForm, ManualExampleForm, ReviewFilterForm
from training.models import TrainingExample
from training.review.errors import ExampleAlreadyFlagged

SUBMITTED = "Training example submitted successfully!"
LEAD_SEARCH_LIMIT = 20


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


def _add_service_errors(form, exc: ValidationError) -> None:
    """Attach a service's field errors to the form fields it has, the rest above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _back_to_conversation(request, *, message: Message):
    """After flagging a reply: the same conversation, with the next reply nobody flagged yet selected."""
    lead_id = message.conversation.lead_id
    following = selectors.training_next_unflagged_reply(message=message)
    if following is None:
        messages.info(request, "That was the last unflagged reply of this conversation.")
        return redirect(f"{reverse('dashboard:lead_detail', args=[lead_id])}#message-{message.pk}")
    messages.info(request, "The next reply is selected.")
    return redirect(f"{reverse('dashboard:training_submit')}?lead={lead_id}&message={following.pk}")


def _after_submit(request, example: TrainingExample):
    """Near-duplicates and conflicts found on submit are shown at once, on the example's page."""
    similar = (example.metadata or {}).get("similar") or []
    if not similar:
        return redirect("dashboard:training_home")
    conflicts = [item for item in similar if item.get("kind") == "conflict"]
    messages.warning(
        request,
        f"{len(conflicts)} approved example{pluralize(len(conflicts))} "
        f"contradict{pluralize(len(conflicts), 's,')} this one"
        if conflicts
        else f"{len(similar)} approved example{pluralize(len(similar))} "
        f"ask{pluralize(len(similar), 's,')} nearly the same thing",
    )
    return redirect("dashboard:training_example_detail", example.pk)


class TrainingHomeView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_EXAMPLES

    def get(self, request):
        recent = list(selectors.training_example_list()[:10])
        mine = selectors.training_examples_of_submitter(user=request.user)
        return render(
            request,
            "training/home.html",
            {
                "stats": selectors.training_example_stats(),
                "active_prompt": active_prompt_version(),
                "recent": recent,
                "mine": mine,
            },
        )


class TrainingSubmitView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_SUBMIT_EXAMPLE

    def get(self, request):
        lead_id = _int_or_none(request.GET.get("lead"))
        message_id = _int_or_none(request.GET.get("message"))
        flagged = (
            TrainingExample.objects.filter(message_id=message_id).values_list("pk", flat=True).first()
            if message_id is not None
            else None
        )
        if flagged is not None:
            messages.info(request, f"This reply was already flagged as example #{flagged}.")
            return redirect("dashboard:training_example_detail", flagged)
        conversation_form = ConversationExampleForm(
            prefix="conv", initial={"lead": lead_id, "message_id": message_id}
        )
        tab = "manual" if request.GET.get("tab") == "manual" else "conversation"
        return self._render(
            request, lead_id=lead_id, message_id=message_id, tab=tab, conversation_form=conversation_form
        )

    def post(self, request):
        mode = request.POST.get("mode")
        if mode == "manual":
            form = ManualExampleForm(request.POST, prefix="manual")
            if form.is_valid():
                data = form.cleaned_data
                try:
                    example = services.training_example_submit_manual(
                        submitter=request.user,
                        user_message=data["user_message"],
                        ai_response=data["ai_response"],
                        example_type=data["example_type"],
                        feedback=data["feedback"],
                        expected_response=data["expected_response"],
                    )
                except ValidationError as exc:
                    _add_service_errors(form, exc)
                else:
                    messages.success(request, SUBMITTED)
                    return _after_submit(request, example)
            return self._render(request, lead_id=None, message_id=None, tab="manual", manual_form=form)

        form = ConversationExampleForm(request.POST, prefix="conv")
        lead_id = _int_or_none(request.POST.get("conv-lead"))
        message_id = _int_or_none(request.POST.get("conv-message_id"))
        if form.is_valid():
            data = form.cleaned_data
            message = (
                Message.objects.select_related("conversation", "in_reply_to")
                .filter(pk=data["message_id"], conversation__lead_id=data["lead"])
                .first()
            )
            if message is None:
                form.add_error("message_id", "That reply is not part of this lead's conversation.")
            else:
                try:
                    example = services.training_example_submit_from_conversation(
                        message=message,
                        submitter=request.user,
                        example_type=data["example_type"],
                        feedback=data["feedback"],
                        expected_response=data["expected_response"],
                    )
                except ExampleAlreadyFlagged as exc:
                    messages.info(request, exc.message)
                    return redirect("dashboard:training_example_detail", exc.example_id)
                except ValidationError as exc:
                    _add_service_errors(form, exc)
                else:
                    messages.success(request, SUBMITTED)
                    if (example.metadata or {}).get("similar"):
                        return _after_submit(request, example)
                    return _back_to_conversation(request, message=message)
        return self._render(
            request, lead_id=lead_id, message_id=message_id, tab="conversation", conversation_form=form
        )

    def _render(self, request, *, lead_id, message_id, tab, conversation_form=None, manual_form=None):
        lead = Lead.objects.filter(pk=lead_id).first() if lead_id else None
        # Without JavaScript the picker is a search form: its matches are listed as links.
        lead_query = request.GET.get("lead_q", "").strip()[:100]
        if lead is not None and lead_query and lead_query != lead.display_name:
            lead = None  # a new search typed over the chosen lead's name
        searching = bool(lead_query) and lead is None
        matches = list(lead_list(search=lead_query)[:LEAD_SEARCH_LIMIT]) if searching else []
        transcript = list(lead_transcript(lead=lead)) if lead is not None else []
        selected = None
        lead_before = None
        for message in transcript:
            if message.role == MessageRole.LEAD:
                lead_before = message
            elif message.role == MessageRole.AGENT:
                message.lead_before = lead_before
                if message.pk == message_id:
                    selected = message
        if conversation_form is None:
            conversation_form = ConversationExampleForm(prefix="conv", initial={"lead": lead_id})
        return render(
            request,
            "training/submit.html",
            {
                "tab": tab,
                "lead": lead,
                "lead_query": lead_query,
                "matches": matches,
                "transcript": transcript,
                "selected": selected,
                "agent_role": MessageRole.AGENT,
                "conversation_form": conversation_form,
                "manual_form": manual_form or ManualExampleForm(prefix="manual"),
            },
        )


class TrainingLeadSearchView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The submit page's type-ahead: up to 20 leads matching `q` (name, handle, email, phone), as JSON."""

    permission_required = roles.PERM_SUBMIT_EXAMPLE
    raise_exception = True

    def get(self, request):
        query = request.GET.get("q", "").strip()
        if len(query) > 100:
            return JsonResponse({"error": "The search may be at most 100 characters."}, status=400)
        leads = lead_list(search=query)[:LEAD_SEARCH_LIMIT]
        return JsonResponse(
            {
                "results": [
                    {
                        "id": lead.pk,
                        "name": lead.display_name,
                        "username": lead.username,
                        "status": lead.get_status_display(),
                    }
                    for lead in leads
                ]
            }
        )


class TrainingReviewView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_REVIEW_EXAMPLE
    paginate_by = 20

    def get(self, request):
        form = ReviewFilterForm(request.GET or None)
        status = form.cleaned_data["status"] if form.is_valid() else ""
        page = Paginator(selectors.training_review_queue(status=status), self.paginate_by).get_page(
            request.GET.get("page")
        )
        examples = list(page.object_list)
        excerpts = selectors.training_example_excerpts(examples=examples)
        for example in examples:
            example.excerpt = excerpts.get(example.pk, [])
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "training/review.html",
            {
                "form": form,
                "page": page,
                "examples": examples,
                "query": query.urlencode(),
                "pending_count": selectors.training_example_stats()["pending"],
            },
        )

    def post(self, request):
        action = request.POST.get("action")
        ids = [i for i in (_int_or_none(v) for v in request.POST.getlist("ids")) if i is not None]
        if action not in {a.value for a in services.BulkAction} or not ids:
            messages.error(request, "Select at least one example and an action.")
        else:
            result = services.training_examples_decide_bulk(
                example_ids=ids,
                reviewer=request.user,
                action=services.BulkAction(action),
                note=request.POST.get("note", ""),
            )
            if result.done:
                messages.success(request, result.done_message)
            if result.skipped:
                messages.warning(request, result.skipped_message)
        next_url = request.POST.get("next", "")
        if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            return redirect(next_url)
        return redirect("dashboard:training_review")


class TrainingExampleDeleteView(LoginRequiredMixin, View):
    def post(self, request, example_id: int):
        example = get_object_or_404(TrainingExample, pk=example_id)
        try:
            services.training_example_delete(example=example, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Example #{example_id} deleted.")
        return redirect("dashboard:training_home")
