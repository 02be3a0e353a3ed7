from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View

from agent import evaluation
from agent.budget import BudgetExceeded
from leads import roles
from prompts.models import PromptVersion
from prompts.selectors import active_prompt_version


class PromptEvaluateView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The prompt page's "Test against approved examples" button: start a run beside the active version."""

    http_method_names = ["post"]
    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request, *args, **kwargs):
        back = f"{reverse('dashboard:prompt_editor')}#evaluation"
        version_id = request.POST.get("version_id", "")
        version = PromptVersion.objects.filter(pk=int(version_id)).first() if version_id.isdigit() else None
        if version is None:
            raise Http404("No such prompt version.")
        active = active_prompt_version()
        against = active if active is not None and active.pk != version.pk else None
        try:
            run = evaluation.evaluation_run_create(version=version, against=against, user=request.user)
        except ValidationError as error:
            messages.error(request, f"The test did not start. {' '.join(error.messages)}")
            return redirect(back)
        except BudgetExceeded as refused:
            messages.error(request, f"The test did not start. {refused.message}")
            return redirect(back)
        beside = f" beside active v{against.version}" if against is not None else ""
        messages.success(
            request,
            f"Testing v{version.version}{beside} against up to {run.example_limit} approved examples.",
        )
        return redirect(back)
