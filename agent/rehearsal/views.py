"""Rehearsal pages: scenarios (list, new by hand or drafted from a conversation, edit), starting a run,
the report, a play's transcript. Thin: parse the form, call one service or selector, render."""

import json
from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from agent.budget import BudgetExceeded
from agent.rehearsal import selectors, services
from agent.rehearsal.models import MAX_REPEATS, CheckKind, Scenario
from leads import roles
from leads.models import Channel, Conversation
from prompts.models import PromptVersion
from prompts.selectors import active_prompt_version

DEFAULT_CHECKS = (
    '[{"kind": "budget_before_price"}, {"kind": "length_limit"}, '
    '{"kind": "max_questions", "params": {"max": 2}}]'
)


def _facts_text(facts: Any) -> str:
    if not isinstance(facts, dict):
        return json.dumps(facts, ensure_ascii=False)
    return "\n".join(f"{key}: {value}" for key, value in facts.items())


def _form_data(post: Any) -> dict[str, Any]:
    facts: dict[str, str] = {}
    for line in post.get("facts", "").splitlines():
        key, sep, value = line.partition(":")
        if line.strip() and not sep:
            raise ValidationError({"facts": f"Write each fact as “name: value” (not “{line.strip()[:40]}”)."})
        if key.strip():
            facts[key.strip()] = value.strip()
    conversation = post.get("source_conversation_id", "")
    return {
        "title": post.get("title", ""),
        "persona": post.get("persona", ""),
        "goal": post.get("goal", ""),
        "opening_messages": post.get("opening_messages", ""),
        "channel": post.get("channel", ""),
        "facts": facts,
        "max_turns": post.get("max_turns", ""),
        "checks": post.get("checks", ""),
        "tags": post.get("tags", ""),
        "source_conversation_id": int(conversation) if conversation.isdigit() else None,
    }


def _form_context(values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "values": values,
        "channels": Channel.choices,
        "check_kinds": CheckKind.choices,
        **extra,
    }


def _values_from(data: Any) -> dict[str, Any]:
    return {
        "title": data.title,
        "persona": data.persona,
        "goal": data.goal,
        "opening_messages": "\n".join(str(text) for text in data.opening_messages or []),
        "channel": data.channel,
        "facts": _facts_text(data.facts),
        "max_turns": data.max_turns,
        "checks": json.dumps(data.checks, ensure_ascii=False) if data.checks else DEFAULT_CHECKS,
        "tags": ", ".join(str(tag) for tag in data.tags or []),
        "source_conversation_id": getattr(data, "source_conversation_id", None) or "",
    }


class ScenarioListView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_PROMPTS

    def get(self, request):
        tag = request.GET.get("tag", "")
        return render(
            request,
            "rehearsal/scenarios.html",
            {
                "scenarios": list(selectors.scenario_list(tag=tag)),
                "tags": selectors.scenario_tags(),
                "tag": tag,
                "runs": selectors.rehearsal_run_list(limit=10),
            },
        )


class ScenarioCreateView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """New scenario by hand, or (?conversation=<id>) drafted from a real conversation, editable first."""

    permission_required = roles.PERM_CREATE_PROMPT

    def get(self, request):
        conversation_id = request.GET.get("conversation", "")
        values: dict[str, Any] = {"checks": DEFAULT_CHECKS, "max_turns": 6, "channel": Channel.INSTAGRAM}
        conversation = None
        if conversation_id:
            conversation = (
                Conversation.objects.select_related("lead").filter(pk=int(conversation_id)).first()
                if conversation_id.isdigit()
                else None
            )
            if conversation is None:
                raise Http404("No such conversation.")
            try:
                values = _values_from(services.scenario_draft_from_conversation(conversation=conversation))
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
        return render(
            request,
            "rehearsal/scenario_form.html",
            _form_context(values, conversation=conversation, creating=True),
        )

    def post(self, request):
        try:
            scenario = services.scenario_create(data=_form_data(request.POST), user=request.user)
        except ValidationError as error:
            messages.error(request, f"The scenario was not saved. {' '.join(error.messages)}")
            return render(
                request,
                "rehearsal/scenario_form.html",
                _form_context(dict(request.POST.items()), creating=True, errors=_errors(error)),
                status=400,
            )
        messages.success(request, f"Saved scenario “{scenario.title}”.")
        return redirect(reverse("dashboard:rehearsal"))


def _errors(error: ValidationError) -> dict[str, str]:
    if hasattr(error, "error_dict"):
        return {key.split(".")[0]: " ".join(values) for key, values in error.message_dict.items()}
    return {}


class ScenarioEditView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_PROMPTS

    def _scenario(self, scenario_id: int) -> Scenario:
        scenario = Scenario.objects.filter(pk=scenario_id).first()
        if scenario is None:
            raise Http404("No such scenario.")
        return scenario

    def get(self, request, scenario_id: int):
        scenario = self._scenario(scenario_id)
        values = _values_from(scenario)  # as stored, even when the admin left it invalid
        values["is_active"] = scenario.is_active
        return render(request, "rehearsal/scenario_form.html", _form_context(values, scenario=scenario))

    def post(self, request, scenario_id: int):
        if not request.user.has_perm(roles.PERM_CREATE_PROMPT):
            raise PermissionDenied("Your role may not change scenarios.")
        scenario = self._scenario(scenario_id)
        try:
            data = _form_data(request.POST)
            data.pop("source_conversation_id", None)
            data["is_active"] = request.POST.get("is_active") == "on"
            services.scenario_update(scenario=scenario, data=data)
        except ValidationError as error:
            messages.error(request, f"The scenario was not saved. {' '.join(error.messages)}")
            return render(
                request,
                "rehearsal/scenario_form.html",
                _form_context(dict(request.POST.items()), scenario=scenario, errors=_errors(error)),
                status=400,
            )
        messages.success(request, f"Saved scenario “{scenario.title}”.")
        return redirect(reverse("dashboard:rehearsal"))


class RehearsalStartView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The prompt page's "Rehearse" button: a run of the version beside the active one."""

    http_method_names = ["post"]
    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request):
        back = f"{reverse('dashboard:prompt_editor')}#rehearsal"
        version_id = request.POST.get("version_id", "")
        version = PromptVersion.objects.filter(pk=int(version_id)).first() if version_id.isdigit() else None
        if version is None:
            raise Http404("No such prompt version.")
        repeats = request.POST.get("repeats", "")
        active = active_prompt_version()
        against = active if active is not None and active.pk != version.pk else None
        try:
            run = services.rehearsal_run_create(
                version=version,
                against=against,
                repeats=int(repeats) if repeats.isdigit() else None,
                user=request.user,
            )
        except ValidationError as error:
            messages.error(request, f"The rehearsal did not start. {' '.join(error.messages)}")
            return redirect(back)
        except BudgetExceeded as refused:
            messages.error(request, f"The rehearsal did not start. {refused.message}")
            return redirect(back)
        beside = f" beside active v{against.version}" if against is not None else ""
        messages.success(
            request, f"Rehearsing v{version.version}{beside}, each scenario {run.repeats} times."
        )
        return redirect(reverse("dashboard:rehearsal_report", args=[run.pk]))


class RehearsalReportView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_PROMPTS

    def get(self, request, run_id: int):
        run = selectors.rehearsal_run_get(run_id=run_id)
        if run is None:
            raise Http404("No such rehearsal.")
        report = selectors.rehearsal_report(run=run)
        return render(
            request,
            "rehearsal/report.html",
            {"run": run, "report": report, "gate": asdict(report.gate), "max_repeats": MAX_REPEATS},
        )


class RehearsalPlayView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_PROMPTS

    def get(self, request, play_id: int):
        play = selectors.rehearsal_play_get(play_id=play_id)
        if play is None:
            raise Http404("No such play.")
        return render(
            request,
            "rehearsal/play.html",
            {
                "play": play,
                "rows": selectors.play_transcript_rows(play=play),
                "failed": [r for r in play.check_results if r["passed"] is False],
                "checks": play.check_results,
            },
        )
