"""A reply's cost beside it (lead page, inbox thread), from the row already loaded: no query."""

from django import template

from agent.spend.selectors import reply_cost

register = template.Library()


@register.filter
def reply_cost_label(message) -> str:
    """ "150 tokens · $0.0001" for an agent reply with token counts; "" otherwise."""
    cost = reply_cost(message=message)
    if cost is None:
        return ""
    usd = f" · ${cost.usd:.4f}" if cost.usd is not None else ""
    return f"{cost.tokens:,} tokens{usd}"


@register.filter
def reply_cost_detail(message) -> str:
    """The hover detail: input and output tokens, the model, the exact USD (or why there is none)."""
    cost = reply_cost(message=message)
    if cost is None:
        return ""
    usd = f"${cost.usd:.6f}" if cost.usd is not None else "not priced (AGENT_MODEL_PRICES)"
    return (
        f"{cost.prompt_tokens:,} input + {cost.completion_tokens:,} output tokens, "
        f"{message.model or 'unknown model'}: {usd}"
    )
