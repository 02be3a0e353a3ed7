"""The review queue, the example library and an example's page (thin: parse, call, render)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views import View

from leads import roles
from training import selectors as training_selectors
from training import services as training_services
from training.models import ExampleStatus, TrainingExample
from training.review import selectors, services
from training.review.forms import DecisionForm, ExampleFilterForm, submitters

PAGE_SIZE = 20


def _ids(request) -> list[int]:
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    return ids


def _errors(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


def _back(request, fallback: str):
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(fallback)


def _decide_one(request, *, example: TrainingExample, action: str) -> None:
    """One example's decision from its card or its page; errors become messages."""
    form = DecisionForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    note = data.get("note") or ""
    try:
        if action == "approve":
            edited = data.get("expected_response") or ""
            if edited.strip() or data.get("review_by"):
                services.training_example_approve_edited(
                    example=example,
                    reviewer=request.user,
                    expected_response=edited or example.expected_response,
                    note=note,
                    review_by=data.get("review_by"),
                )
            else:
                training_services.training_example_approve(example=example, reviewer=request.user, note=note)
            messages.success(request, f"Approved example #{example.pk}.")
        elif action == "reject":
            training_services.training_example_reject(example=example, reviewer=request.user, note=note)
            messages.success(request, f"Rejected example #{example.pk}.")
        elif action == "reopen":
            training_services.training_example_reopen(example=example, user=request.user, note=note)
            messages.success(request, f"Reopened example #{example.pk}.")
        elif action == "retire":
            services.training_example_retire(example=example, user=request.user, note=note)
            messages.success(request, f"Retired example #{example.pk}: the agent no longer sees it.")
        elif action == "restore":
            services.training_example_restore(example=example, user=request.user)
            messages.success(request, f"Example #{example.pk} is back in the agent's examples.")
        elif action == "review_by":
            services.training_example_set_review_by(
                example=example, user=request.user, review_by=data.get("review_by")
            )
            messages.success(request, f"Review date of example #{example.pk} saved.")
        else:
            messages.error(request, "Unknown action.")
    except ValidationError as exc:
        messages.error(request, f"#{example.pk}: {_errors(exc)}")


def _decide_bulk(request, *, ids: list[int], action: str) -> None:
    """Bulk approve/reject: only the selected examples that are still pending; reopen: decided ones."""
    if action in ("approve", "reject"):
        wanted = ExampleStatus.PENDING
        eligible = list(
            TrainingExample.objects.filter(pk__in=ids, status=wanted).values_list("pk", flat=True)
        )
    else:
        eligible = list(
            TrainingExample.objects.filter(pk__in=ids)
            .exclude(status=ExampleStatus.PENDING)
            .values_list("pk", flat=True)
        )
    left_out = sorted(set(ids) - set(eligible))
    note = request.POST.get("note", "")
    bulk = getattr(training_services, "training_examples_decide_bulk", None)
    if bulk is not None:
        result = bulk(
            example_ids=eligible,
            reviewer=request.user,
            action=training_services.BulkAction(action),
            note=note,
        )
        done, skipped = result.done, [f"#{pk}: {why}" for pk, why in result.skipped]
    else:  # before training_examples_decide_bulk lands
        done, skipped = 0, []
        for example in TrainingExample.objects.filter(pk__in=eligible).order_by("created_at", "id"):
            try:
                if action == "reopen":
                    training_services.training_example_reopen(example=example, user=request.user, note=note)
                elif action == "approve":
                    training_services.training_example_approve(
                        example=example, reviewer=request.user, note=note
                    )
                else:
                    training_services.training_example_reject(
                        example=example, reviewer=request.user, note=note
                    )
                done += 1
            except ValidationError as exc:
                skipped.append(f"#{example.pk}: {_errors(exc)}")
    label = {"approve": "Approved", "reject": "Rejected", "reopen": "Reopened"}[action]
    if done:
        messages.success(request, f"{label} {done} example{pluralize(done)}.")
    if left_out:
        why = "not pending" if action != "reopen" else "still pending"
        skipped.extend(f"#{pk}: {why}" for pk in left_out)
    if skipped:
        messages.warning(request, "Skipped " + "; ".join(skipped))


class ReviewQueueView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Pending only by default, oldest first, with filters, similar pending grouped, keyboard shortcuts."""

    permission_required = roles.PERM_REVIEW_EXAMPLE

    def get(self, request):
        form = ExampleFilterForm(
            request.GET or None, default_status=ExampleStatus.PENDING, submitters=submitters()
        )
        filters = form.to_filters(library=False)
        page = Paginator(selectors.review_queue(filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
        examples = list(page.object_list)
        excerpts = training_selectors.training_example_excerpts(examples=examples)
        similar = selectors.similar_stored(examples=examples)
        groups = selectors.pending_groups(examples=examples)
        group_members: dict[int, list[int]] = {}
        for pk, group in groups.items():
            group_members.setdefault(group, []).append(pk)
        for example in examples:
            example.excerpt = excerpts.get(example.pk, [])
            example.similar = similar.get(example.pk, [])
            example.conflicts = [s for s in example.similar if s.kind == "conflict"]
            example.group = groups.get(example.pk)
            example.group_ids = " ".join(str(pk) for pk in group_members.get(example.group, []))
            example.source = selectors.example_source(example)
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
                "pending_count": training_selectors.training_example_stats()["pending"],
                "progress": selectors.review_progress(),
                "filters": filters,
            },
        )

    def post(self, request):
        action = request.POST.get("action", "")
        ids = _ids(request)
        if action not in ("approve", "reject", "reopen") or not ids:
            messages.error(request, "Select at least one example and an action.")
        elif len(ids) == 1 and request.POST.get("single"):
            example = TrainingExample.objects.filter(pk=ids[0]).first()
            if example is None:
                raise Http404
            _decide_one(request, example=example, action=action)
        else:
            _decide_bulk(request, ids=ids, action=action)
        return _back(request, reverse("dashboard:training_review"))


class LibraryView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Every example, approved ones first by default: search, filters, due for re-review, export."""

    permission_required = roles.PERM_VIEW_EXAMPLES

    def get(self, request):
        form = ExampleFilterForm(
            request.GET or None, default_status=ExampleStatus.APPROVED, submitters=submitters()
        )
        filters = form.to_filters(library=True)
        page = Paginator(selectors.library_examples(filters=filters), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        examples = list(page.object_list)
        for example in examples:
            example.source = selectors.example_source(example)
        query = request.GET.copy()
        query.pop("page", None)
        export_params = {}
        for key in ("example_type", "source", "channel", "created_from", "created_to", "q"):
            value = getattr(filters, key)
            if value:
                export_params[key] = value.isoformat() if hasattr(value, "isoformat") else value
        return render(
            request,
            "training/library.html",
            {
                "form": form,
                "page": page,
                "examples": examples,
                "query": query.urlencode(),
                "export_query": urlencode(export_params),
            },
        )


class ExampleDetailView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_EXAMPLES

    def get(self, request, example_id: int):
        example = selectors.example_detail(example_id=example_id)
        if example is None:
            raise Http404
        history = selectors.example_history(example_id=example.pk)
        context: dict[str, Any] = {
            "example": example,
            "source": selectors.example_source(example),
            "similar": selectors.example_similar_approved(example=example, exclude_id=example.pk),
            "history": history,
            "uses": selectors.example_recent_uses(example_id=example.pk),
            "can_review": request.user.has_perm(roles.PERM_REVIEW_EXAMPLE),
            "reviewer_edit": (example.metadata or {}).get("reviewer_edit"),
        }
        return render(request, "training/example_detail.html", context)

    def post(self, request, example_id: int):
        example = TrainingExample.objects.filter(pk=example_id).first()
        if example is None:
            raise Http404
        if not request.user.has_perm(roles.PERM_REVIEW_EXAMPLE):
            raise PermissionDenied("Your role may not change training examples.")
        _decide_one(request, example=example, action=request.POST.get("action", ""))
        return _back(request, reverse("dashboard:training_example_detail", args=[example_id]))
