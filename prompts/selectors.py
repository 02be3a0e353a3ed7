from prompts.models import PromptVersion


def active_prompt_version() -> PromptVersion | None:
    """The version the agent answers with, or None when no version is active (the agent must not guess)."""
    return PromptVersion.objects.filter(is_active=True).first()
