"""Activity rows as sentences a person reads ("Hannah paused the bot"), one entry per verb.

Every verb that any app records has an entry here; tests/leads/test_activity_text.py scans the source
for `activity_record(verb=...)` calls and fails when one is missing. Strings only: no other app is imported.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leads.models import Activity, LeadStatus


@dataclass(frozen=True)
class _Context:
    actor: str  # the person's name, or "" when the system did it
    actor_id: int | None
    data: dict[str, Any]

    def who(self, nobody: str = "Someone") -> str:
        return self.actor or nobody

    def get(self, key: str, default: Any = "") -> Any:
        value = self.data.get(key, default)
        return default if value is None else value


def _status_label(value: Any) -> str:
    try:
        return str(LeadStatus(value).label)
    except ValueError:
        return str(value or "an unknown status")


def _with_reason(sentence: str, reason: Any) -> str:
    reason = str(reason or "").strip().rstrip(".")
    return f"{sentence}: {reason}" if reason else sentence


def _status_changed(c: _Context) -> str:
    to = _status_label(c.get("to")).lower()
    if c.get("undo_of") != "":
        return f"{c.who()} undid the status change: the lead is {to} again"
    if c.actor:
        return f"{c.actor} marked the lead {to}"
    if c.get("source") == "integration":
        return f"A booking moved the lead to {to}"
    return f"The bot marked the lead {to}"


def _assigned(c: _Context) -> str:
    to = c.data.get("to")
    if to is None:
        return f"{c.who()} unassigned the lead"
    if c.actor_id is not None and to == c.actor_id:
        return f"{c.actor} took the lead"
    return f"{c.who()} assigned the lead to a teammate"


def _activated(c: _Context) -> str:
    version = c.get("version", "?")
    if c.get("rollback", False):
        return f"{c.who()} rolled the prompt back to v{version}"
    return f"{c.who()} made prompt v{version} live"


def _example(c: _Context) -> str:
    example_id = c.get("example_id")
    return f"training example #{example_id}" if example_id != "" else "a training example"


def _forgotten(c: _Context) -> str:
    count = int(c.get("messages", 0) or 0)
    messages = f"{count} message{'' if count == 1 else 's'}"
    return f"{c.who('A scheduled job')} erased this lead's personal data ({messages})"


def _turn_failed(c: _Context) -> str:
    attempt = c.get("attempt")
    tail = f" (attempt {attempt})" if attempt not in ("", 1) else ""
    return f"The bot could not answer a message{tail}"


def _emailed(c: _Context) -> str:
    minutes = c.get("minutes")
    waited = f" for {minutes} minutes" if minutes != "" else ""
    return f"Nobody answered the lead{waited}; the team was emailed"


SENTENCES: dict[str, Callable[[_Context], str]] = {
    # The lead and its conversation
    "lead.status_changed": _status_changed,
    "lead.bot_paused": lambda c: f"{c.actor} paused the bot" if c.actor else "The bot was paused",
    "lead.bot_resumed": lambda c: f"{c.actor} resumed the bot" if c.actor else "The bot was resumed",
    "lead.handed_off": lambda c: _with_reason("The lead was handed to a person", c.get("reason")),
    "lead.assigned": _assigned,
    "lead.taken_over": lambda c: f"{c.who()} took over the conversation from the bot",
    "lead.handed_back": lambda c: f"{c.who()} handed the conversation back to the bot",
    "lead.note_added": lambda c: f"{c.who()} added a note",
    "lead.operator_replied": lambda c: f"{c.who()} replied to the lead",
    "lead.forgotten": _forgotten,
    "lead.opted_out": lambda c: "The lead asked for no more follow-up messages",
    "lead.draft_mode_set": lambda c: (
        f"{c.who()} set the bot to follow the team's draft setting"
        if c.data.get("draft_mode") is None
        else f"{c.who()} {'turned on' if c.data.get('draft_mode') else 'turned off'} draft mode for this lead"
    ),
    # The agent
    "agent.skipped_paused": lambda c: "A message arrived while the bot was paused; it stayed silent",
    "agent.needs_human": lambda c: _with_reason("The bot asked for a person", c.get("reason")),
    "agent.turn_failed": _turn_failed,
    "agent.contact_token_refused": lambda c: (
        "A message for this lead came without its contact token; it was answered without the lead's history"
    ),
    "agent.budget_cap": lambda c: "The bot stopped answering: a spending limit was reached",
    "agent.budget_handoff": lambda c: _with_reason("The lead was handed to a person", c.get("reason")),
    "agent.followup_sent": lambda c: (
        f"The bot sent follow-up {c.get('step')}" if c.get("step") != "" else "The bot sent a follow-up"
    ),
    "inbox.alert_emailed": _emailed,
    "inbox.draft_sent": lambda c: f"{c.who()} sent the bot's draft reply",
    "inbox.draft_edited": lambda c: f"{c.who()} edited the bot's draft reply and sent it",
    "inbox.draft_discarded": lambda c: f"{c.who()} discarded the bot's draft reply",
    "booking.booked": lambda c: "The lead booked a call",
    "booking.cancelled": lambda c: "The lead cancelled a booked call",
    # Training examples
    "training.submitted": lambda c: f"{c.who()} submitted {_example(c)}",
    "training.approved": lambda c: f"{c.who()} approved {_example(c)}",
    "training.rejected": lambda c: f"{c.who()} rejected {_example(c)}",
    "training.reopened": lambda c: f"{c.who()} reopened {_example(c)}",
    "training.updated": lambda c: f"{c.who()} edited {_example(c)}",
    "training.edited_on_review": lambda c: f"{c.who()} edited {_example(c)} while reviewing it",
    "training.deleted": lambda c: f"{c.who()} deleted {_example(c)}",
    "training.retired": lambda c: f"{c.who()} retired {_example(c)}",
    "training.restored": lambda c: f"{c.who()} restored {_example(c)}",
    "training.review_by_set": lambda c: (
        f"{c.who()} set {_example(c)} to be reviewed again by {c.get('review_by')}"
        if c.get("review_by")
        else f"{c.who()} cleared the review date of {_example(c)}"
    ),
    # Prompts, releases and the catalog
    "prompt.activated": _activated,
    "prompt.draft_saved": lambda c: f"{c.who()} saved prompt draft v{c.get('version', '?')}",
    "prompt.params_unsupported": lambda c: "The model ignored some settings of a prompt version",
    "release.proposed": lambda c: f"{c.who()} proposed prompt v{c.get('version', '?')} for release",
    "release.sent_back": lambda c: f"{c.who()} sent prompt v{c.get('version', '?')} back to its author",
    "release.approved": lambda c: (
        f"{c.who()} approved prompt v{c.get('version', '?')} for {c.get('share_percent', 100)}% of leads"
    ),
    "release.experiment_started": lambda c: (
        f"{c.who()} started testing prompt v{c.get('treatment', '?')} against v{c.get('control', '?')}"
    ),
    "release.experiment_promoted": lambda c: (
        f"{c.who()} made prompt v{c.get('version', '?')} live after its experiment"
    ),
    "release.experiment_stopped": lambda c: _with_reason(
        f"{c.who('The system')} stopped the prompt experiment", c.get("reason")
    ),
    "release.experiment_decided": lambda c: "The prompt experiment reached a verdict",
    "release.rolled_back": lambda c: (
        f"{c.who()} rolled the prompt back from v{c.get('from_version', '?')} to v{c.get('to_version', '?')}"
    ),
    "release.auto_rolled_back": lambda c: _with_reason(
        f"Prompt v{c.get('version', '?')} was rolled back automatically", c.get("reason")
    ),
    "release.regression_detected": lambda c: f"Prompt v{c.get('version', '?')} is doing worse than before",
    "release.regression_dismissed": lambda c: f"{c.who()} dismissed a regression alert",
    "release.model_retiring": lambda c: (
        f"The model {c.get('model', '?')} shuts down on {c.get('shutdown_date', '?')}"
    ),
    "catalog.imported": lambda c: f"{c.who()} imported the catalog",
    "catalog.offer_saved": lambda c: f"{c.who()} saved an offer",
    "catalog.published": lambda c: f"{c.who()} published catalog version {c.get('catalog_version', '?')}",
}


def actor_name(actor: Any) -> str:
    if actor is None:
        return ""
    return actor.get_full_name() or actor.get_username()


def activity_sentence(activity: Activity) -> str:
    """The activity as one sentence; the actor must be loaded (select_related) to avoid a query per row."""
    actor = activity.actor if activity.actor_id else None
    context = _Context(actor=actor_name(actor), actor_id=activity.actor_id, data=dict(activity.data or {}))
    render = SENTENCES.get(activity.verb)
    if render is None:
        # Rows written by code that no longer exists: still words, never the raw code.
        return activity.verb.rpartition(".")[2].replace("_", " ").capitalize()
    return render(context)
