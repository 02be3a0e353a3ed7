"""The prompt workspace: the active version and its release state, the editor (text + model settings),
history, any version read-only, any two side by side, proposals and their review, experiments, rollback."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from config.errors import ServiceError
from leads import roles
from prompts import selectors, services
from prompts.funnel.charts import funnel_display
from prompts.funnel.selectors import ATTRIBUTION_RULE, funnel_for_versions
from prompts.models import PromptVersion
from prompts.releases import selectors as release_selectors
from prompts.releases import services as release_services
from prompts.releases.models import Experiment, RegressionAlert

HISTORY_PAGE_SIZE = 20
PAGE = "dashboard:prompt_editor"


def _errors_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _diff_lines(text: str) -> list[tuple[str, str]]:
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        lines.append((kind, line))
    return lines


def _settings_rows(a: PromptVersion, b: PromptVersion | None = None) -> list[dict[str, Any]]:
    def value(v: PromptVersion, name: str) -> str:
        if name == "model_name":
            return release_selectors.version_model(v)
        raw = getattr(v, name)
        if name == "unsupported_params":
            return ", ".join(raw or []) or "—"
        return "model default" if raw in (None, "") else str(raw)

    labels = [
        ("model_name", "Model"),
        ("temperature", "Temperature"),
        ("reasoning_effort", "Reasoning effort"),
        ("max_output_tokens", "Output token limit"),
        ("unsupported_params", "Left out (model rejected)"),
    ]
    rows = []
    for name, label in labels:
        left = value(a, name)
        right = value(b, name) if b is not None else None
        rows.append({"label": label, "a": left, "b": right, "changed": b is not None and left != right})
    return rows


class PromptEditorView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    template_name = "prompts/prompt_editor.html"
    permission_required = roles.PERM_VIEW_PROMPTS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        active = selectors.prompt_version_get_active()
        page = Paginator(selectors.prompt_version_list(), HISTORY_PAGE_SIZE).get_page(
            self.request.GET.get("page")
        )
        history = selectors.prompt_version_list_with_results(queryset=page.object_list)
        costs = release_selectors.version_costs(versions=history)
        pending = release_selectors.proposals_pending_by_version()
        for v in history:
            v.cost = costs.get(v.pk)
            v.model = release_selectors.version_model(v)
            v.pending_proposal = pending.get(v.pk)
        experiment = release_selectors.experiment_running()
        for v in history:
            v.in_experiment = experiment is not None and experiment.treatment_id == v.pk
        report = release_selectors.experiment_report(experiment=experiment) if experiment else None
        # "Edit as a new draft": the editor starts from the chosen version's text and settings.
        source = active
        wanted = self.request.GET.get("edit")
        if wanted and wanted.isdigit():
            source = release_selectors.version_get(version_id=int(wanted)) or active
        form = kwargs.get("form") or self._form_from(source)
        previous = release_selectors.previous_version(active=active)
        context.update(
            active=active,
            active_model=release_selectors.version_model(active) if active else None,
            page=page,
            history=history,
            chart_data=[
                {
                    "label": f"v{v.version}",
                    "rate": v.results.all_time.success_rate,
                    "low": (v.results.all_time.interval or (None, None))[0],
                    "high": (v.results.all_time.interval or (None, None))[1],
                    "conversations": v.results.all_time.conversations,
                    "active": v.is_active,
                }
                for v in reversed(history)
            ],
            diff=self._diff(active=active),
            max_chars=services.PROMPT_MAX_CHARS,
            form=form,
            edit_source=source,
            experiment=experiment,
            report=report,
            alerts=release_selectors.alerts_open(),
            retirements=release_selectors.retirement_notices(active=active, experiment=experiment),
            previous=previous,
            proposals=list(release_selectors.proposal_list()[:10]),
            efforts=release_services.REASONING_EFFORTS,
            two_person_rule=settings.RELEASE_TWO_PERSON_RULE,
        )
        return context

    @staticmethod
    def _form_from(version: PromptVersion | None) -> dict[str, Any]:
        defaults = release_services.model_settings_defaults()
        if version is None:
            return {
                "content": "",
                "change_note": "",
                "model_name": defaults.model_name,
                "temperature": "" if defaults.temperature is None else defaults.temperature,
                "reasoning_effort": defaults.reasoning_effort,
                "max_output_tokens": defaults.max_output_tokens or "",
                "parent_id": "",
            }
        return {
            "content": version.content,
            "change_note": "",
            "model_name": release_selectors.version_model(version),
            "temperature": "" if version.temperature is None else version.temperature,
            "reasoning_effort": version.reasoning_effort,
            "max_output_tokens": version.max_output_tokens or "",
            "parent_id": version.pk,
        }

    def _diff(self, *, active: PromptVersion | None) -> dict[str, Any] | None:
        """The version picked with ?diff=<id>, else the newest other version, compared with the active one."""
        if active is None:
            return None
        wanted = self.request.GET.get("diff")
        if wanted and wanted.isdigit():
            version = selectors.prompt_version_content(version_id=int(wanted))
        else:
            version = selectors.prompt_version_latest_other(exclude_id=active.pk)
        if version is None:
            return None
        text = selectors.prompt_version_diff(version=version, against=active)
        return {"version": version, "against": active, "lines": _diff_lines(text)}


class _PromptActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    http_method_names = ["post"]

    def back(self, anchor: str = "") -> HttpResponseRedirect:
        return redirect(reverse(PAGE) + anchor)


class PromptDraftSaveView(PromptEditorView):
    """Saving a draft: text and model settings. A refused save shows the page again with the edits kept."""

    permission_required = roles.PERM_CREATE_PROMPT
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = {
            name: request.POST.get(name, "")
            for name in (
                "content",
                "change_note",
                "model_name",
                "temperature",
                "reasoning_effort",
                "max_output_tokens",
                "parent_id",
            )
        }
        propose = request.POST.get("propose") == "1"
        try:
            if propose and not form["change_note"].strip():
                raise ValidationError(
                    {"change_note": "Say what changed and why: the change note is required."}
                )
            model = release_services.model_settings_clean(
                model_name=form["model_name"],
                temperature=form["temperature"],
                reasoning_effort=form["reasoning_effort"],
                max_output_tokens=form["max_output_tokens"],
            )
            parent_id = int(form["parent_id"]) if form["parent_id"].isdigit() else None
            draft = release_services.release_draft_create(
                content=form["content"],
                change_note=form["change_note"],
                user=request.user,
                model=model,
                parent_id=parent_id,
            )
            proposal = (
                release_services.proposal_create(
                    version=draft, user=request.user, change_note=form["change_note"]
                )
                if propose
                else None
            )
        except (ValidationError, ServiceError) as error:
            text = _errors_text(error) if isinstance(error, ValidationError) else str(error)
            messages.error(request, f"The draft was not saved. {text} Your edits are still in the editor.")
            context = self.get_context_data(form=form)
            context["form_errors"] = error.message_dict if hasattr(error, "message_dict") else {}
            return self.render_to_response(context, status=400)
        if proposal is not None:
            messages.success(
                request, f"Saved v{draft.version} and asked for its release. A manager reviews it now."
            )
            return redirect(reverse("dashboard:prompt_proposal", args=[proposal.pk]))
        messages.success(
            request, f"Saved draft v{draft.version}. It is not live until a release is approved."
        )
        return redirect(reverse("dashboard:prompt_version", args=[draft.pk]))


class PromptDeployView(_PromptActionView):
    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, *args, **kwargs):
        try:
            version = services.prompt_version_deploy(
                content=request.POST.get("content", ""),
                change_note=request.POST.get("change_note", ""),
                user=request.user,
            )
        except ValidationError as error:
            messages.error(request, f"Nothing was deployed. {_errors_text(error)}")
            return self.back()
        messages.success(request, f"Deployed v{version.version}; the agent answers with it from now on.")
        return self.back()


class PromptActivateView(_PromptActionView):
    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, version_id: int, *args, **kwargs):
        version = PromptVersion.objects.filter(pk=version_id).only("pk", "version").first()
        if version is None:
            raise Http404("No such prompt version.")
        previous = PromptVersion.objects.filter(is_active=True).values_list("version", flat=True).first()
        services.prompt_version_activate(version=version, user=request.user)
        if previous == version.version:
            messages.info(request, f"v{version.version} was already active.")
        elif previous is not None and version.version < previous:
            messages.success(request, f"Rolled back from v{previous} to v{version.version}.")
        else:
            messages.success(request, f"Activated v{version.version}.")
        return self.back()


# --- Version detail and compare ----------


class PromptVersionView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """Any version, read-only, with "Edit as a new draft", "Ask for release" and its results."""

    template_name = "prompts/version_detail.html"
    permission_required = roles.PERM_VIEW_PROMPTS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        version = selectors.prompt_version_get(version_id=kwargs["version_id"])
        if version is None:
            raise Http404("No such prompt version.")
        model = release_selectors.version_model(version)
        shutdowns = release_selectors.model_shutdowns(names=[model])
        others = list(
            PromptVersion.objects.exclude(pk=version.pk)
            .order_by("-version")
            .values_list("pk", "version")[:200]
        )
        cost = release_selectors.version_costs(versions=[version]).get(version.pk)
        # The funnel's cost per outcome reuses the version's cost (one scan of its replies, not two).
        funnel = funnel_for_versions(
            version_ids=[version.pk], costs={version.pk: cost.total_usd if cost else None}
        )[version.pk]
        context.update(
            version=version,
            model=model,
            shutdown_date=shutdowns.get(model),
            settings_rows=_settings_rows(version),
            cost=cost,
            funnel=funnel_display(funnel=funnel.as_dict()),
            attribution_rule=ATTRIBUTION_RULE,
            pending_proposal=release_selectors.proposals_pending_by_version().get(version.pk),
            proposals=list(release_selectors.proposal_list().filter(version=version)[:10]),
            others=others,
            default_model=settings.OPENAI_MODEL,
        )
        return context


class PromptCompareView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """Any two versions side by side: text and model settings, and the line diff from A to B."""

    template_name = "prompts/compare.html"
    permission_required = roles.PERM_VIEW_PROMPTS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        ids = self.request.GET.getlist("v")
        a_id, b_id = (self.request.GET.get("a"), self.request.GET.get("b"))
        if len(ids) >= 2:
            a_id, b_id = ids[0], ids[1]
        choices = list(PromptVersion.objects.order_by("-version").values_list("pk", "version")[:200])
        a = release_selectors.version_get(version_id=int(a_id)) if a_id and a_id.isdigit() else None
        b = release_selectors.version_get(version_id=int(b_id)) if b_id and b_id.isdigit() else None
        if a is not None and b is not None and a.version > b.version:
            a, b = b, a  # older on the left
        context.update(choices=choices, a=a, b=b)
        if a is not None and b is not None:
            context.update(
                settings_rows=_settings_rows(a, b),
                diff_lines=_diff_lines(selectors.prompt_version_diff(version=b, against=a)),
            )
        return context


# --- Proposals, review ----------


def _evaluation_evidence(*, version_id: int, run_id: int | None) -> Any:
    """The single-turn evaluation picked for a proposal, else the version's latest run (agent app)."""
    from django.apps import apps

    try:
        run_model = apps.get_model("agent", "EvaluationRun")
    except LookupError:
        return None
    runs = run_model.objects.filter(prompt_version_id=version_id)
    if run_id:
        runs = runs.filter(pk=run_id)
    return runs.order_by("-created_at", "-id").first()


class ProposalReviewView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    template_name = "prompts/proposal_review.html"
    permission_required = roles.PERM_VIEW_PROMPTS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        proposal = release_selectors.proposal_get(proposal_id=kwargs["proposal_id"])
        if proposal is None:
            raise Http404("No such proposal.")
        version = proposal.version
        active = PromptVersion.objects.filter(is_active=True).first()
        against = active or proposal.against
        user = self.request.user
        gate = release_services.rehearsal_gate_check(draft=version, against=against)
        context.update(
            proposal=proposal,
            version=version,
            against=against,
            diff_lines=_diff_lines(selectors.prompt_version_diff(version=version, against=against))
            if against
            else [],
            settings_rows=_settings_rows(against, version) if against else _settings_rows(version),
            evaluation=_evaluation_evidence(version_id=version.pk, run_id=proposal.evaluation_run_id),
            gate=gate,
            gate_on=settings.RELEASE_REHEARSAL_GATE,
            two_person_rule=settings.RELEASE_TWO_PERSON_RULE,
            own=proposal.proposed_by_id == user.pk,
            experiment_running=release_selectors.experiment_running(),
        )
        return context


def _service_call(request, call, *, ok: str, back: str) -> HttpResponse:
    try:
        call()
    except ValidationError as error:
        messages.error(request, _errors_text(error))
        return redirect(back)
    except ServiceError as error:
        messages.error(request, str(error))
        return redirect(back)
    messages.success(request, ok)
    return redirect(back)


class ProposalCreateView(_PromptActionView):
    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request, version_id: int, *args, **kwargs):
        version = PromptVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise Http404("No such prompt version.")
        try:
            proposal = release_services.proposal_create(
                version=version, user=request.user, change_note=request.POST.get("change_note", "")
            )
        except (ValidationError, ServiceError) as error:
            messages.error(request, _errors_text(error) if isinstance(error, ValidationError) else str(error))
            return redirect(reverse("dashboard:prompt_version", args=[version.pk]))
        messages.success(request, f"Asked for the release of v{version.version}.")
        return redirect(reverse("dashboard:prompt_proposal", args=[proposal.pk]))


class ProposalDecideView(_PromptActionView):
    """Approve (to 100% or a share as an experiment) or send back with a comment."""

    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, proposal_id: int, *args, **kwargs):
        proposal = release_selectors.proposal_get(proposal_id=proposal_id)
        if proposal is None:
            raise Http404("No such proposal.")
        back = reverse("dashboard:prompt_proposal", args=[proposal.pk])
        decision = request.POST.get("decision")
        try:
            if decision == "approve":
                share = request.POST.get("share_percent", "100")
                release_services.proposal_approve(
                    proposal=proposal,
                    user=request.user,
                    share_percent=int(share) if share.isdigit() else -1,
                    comment=request.POST.get("comment", ""),
                )
                messages.success(
                    request,
                    f"Approved v{proposal.version.version}"
                    + (
                        " for every lead."
                        if share == "100"
                        else f": an experiment at {share}% of leads is running."
                    ),
                )
                return self.back("#experiment" if share != "100" else "")
            if decision == "send_back":
                release_services.proposal_send_back(
                    proposal=proposal, user=request.user, comment=request.POST.get("comment", "")
                )
                messages.success(request, f"Sent v{proposal.version.version} back to its author.")
                return redirect(back)
        except ValidationError as error:
            messages.error(request, _errors_text(error))
            return redirect(back)
        except PermissionDenied as error:
            messages.error(request, str(error))
            return redirect(back)
        except ServiceError as error:
            messages.error(request, str(error))
            return redirect(back)
        messages.error(request, "Choose approve or send back.")
        return redirect(back)


class ExperimentActionView(_PromptActionView):
    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, experiment_id: int, action: str, *args, **kwargs):
        experiment = Experiment.objects.filter(pk=experiment_id).first()
        if experiment is None:
            raise Http404("No such experiment.")
        if action == "promote":
            return _service_call(
                request,
                lambda: release_services.experiment_promote(experiment=experiment, user=request.user),
                ok="Promoted: the candidate answers every lead from now on.",
                back=reverse(PAGE),
            )
        return _service_call(
            request,
            lambda: release_services.experiment_stop(
                experiment=experiment, user=request.user, reason=request.POST.get("reason", "")
            ),
            ok="Stopped: every lead is answered by the active version again.",
            back=reverse(PAGE),
        )


class RollbackView(_PromptActionView):
    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, *args, **kwargs):
        target = request.POST.get("to_version_id", "")
        return _service_call(
            request,
            lambda: release_services.release_rollback(
                user=request.user,
                reason=request.POST.get("reason", ""),
                to_version_id=int(target) if target.isdigit() else None,
            ),
            ok="Rolled back. The agent answers with the restored version from now on.",
            back=reverse(PAGE),
        )


class ReplacementDraftView(_PromptActionView):
    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request, version_id: int, *args, **kwargs):
        version = PromptVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise Http404("No such prompt version.")
        try:
            draft = release_services.release_replacement_draft(
                version=version, model_name=request.POST.get("model_name", ""), user=request.user
            )
        except ValidationError as error:
            messages.error(request, _errors_text(error))
            return redirect(reverse("dashboard:prompt_version", args=[version.pk]))
        messages.success(
            request, f"Saved v{draft.version}: the same text on {draft.model_name}. Rehearse it next."
        )
        return redirect(reverse("dashboard:prompt_version", args=[draft.pk]))


class AlertDismissView(_PromptActionView):
    permission_required = roles.PERM_ACTIVATE_PROMPT

    def post(self, request, alert_id: int, *args, **kwargs):
        alert = RegressionAlert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise Http404("No such alert.")
        return _service_call(
            request,
            lambda: release_services.alert_dismiss(alert=alert, user=request.user),
            ok="Alert dismissed.",
            back=reverse(PAGE),
        )
