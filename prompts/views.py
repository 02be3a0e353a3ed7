from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from leads import roles
from prompts import selectors, services
from prompts.models import PromptVersion

HISTORY_PAGE_SIZE = 20


def _errors_text(error: ValidationError) -> str:
    return " ".join(error.messages)


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
        context.update(
            active=active,
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
            diff=self._diff(active=active, history=history),
            max_chars=services.PROMPT_MAX_CHARS,
        )
        return context

    def _diff(self, *, active: PromptVersion | None, history: list[PromptVersion]) -> dict[str, Any] | None:
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
        return {"version": version, "against": active, "lines": lines}


class _PromptActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    http_method_names = ["post"]

    def back(self) -> HttpResponseRedirect:
        return redirect(reverse("dashboard:prompt_editor"))


class PromptDraftSaveView(_PromptActionView):
    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request, *args, **kwargs):
        try:
            draft = services.prompt_version_create_draft(
                content=request.POST.get("content", ""),
                change_note=request.POST.get("change_note", ""),
                user=request.user,
            )
        except ValidationError as error:
            messages.error(request, f"The draft was not saved. {_errors_text(error)}")
            return self.back()
        messages.success(request, f"Saved draft v{draft.version}. It is not live until someone activates it.")
        return redirect(f"{reverse('dashboard:prompt_editor')}?diff={draft.pk}#diff")


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
