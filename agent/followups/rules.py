"""When a silent lead is due a follow-up: one pure function of its timeline, the clock and the settings.

The beat's selector gathers the facts (agent/followups/selectors.py); this module decides, without a query,
so the same rule is checked by the property test over random timelines (tests/followups).
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

WINDOW = timedelta(hours=24)  # the channel's messaging window after the lead's last message
_UTC_OFFSET = re.compile(r"UTC([+-])(\d{1,2})(?::?(\d{2}))?")


class Skip(StrEnum):
    """Why no follow-up goes out now."""

    DISABLED = "disabled"  # FOLLOWUP_DELAYS_HOURS is empty
    NOT_SILENT = "not_silent"  # the last word is the lead's (it replied), or the agent never answered
    PAUSED = "paused"
    HANDED_OFF = "handed_off"
    TAKEN_OVER = "taken_over"  # a person took the lead over, or wrote to it after the lead's message
    OPTED_OUT = "opted_out"
    WINDOW_CLOSED = "window_closed"
    QUIET_HOURS = "quiet_hours"
    NOT_DUE = "not_due"
    ALL_SENT = "all_sent"
    LEAD_DAILY_CAP = "lead_daily_cap"


@dataclass(frozen=True)
class FollowUpConfig:
    delays: tuple[timedelta, ...]
    quiet: tuple[int, int] | None  # (start hour, end hour) local; end excluded; may wrap midnight
    team_timezone: str
    window_margin: timedelta
    lead_daily_cap: int

    @classmethod
    def from_settings(cls) -> "FollowUpConfig":
        delays = tuple(
            sorted(timedelta(hours=float(h)) for h in settings.FOLLOWUP_DELAYS_HOURS if str(h).strip())
        )
        return cls(
            delays=delays,
            quiet=quiet_hours_parse(settings.FOLLOWUP_QUIET_HOURS),
            team_timezone=settings.FOLLOWUP_TEAM_TIMEZONE,
            window_margin=timedelta(minutes=settings.FOLLOWUP_WINDOW_MARGIN_MINUTES),
            lead_daily_cap=settings.FOLLOWUP_LEAD_DAILY_MESSAGE_CAP,
        )


@dataclass(frozen=True)
class LeadTimeline:
    """What the rule needs to know about one lead, as of now."""

    last_lead_at: datetime | None  # the lead's last message: the window opens there
    anchor_at: datetime | None  # the agent's last delivered reply after it (None: the lead has the last word)
    person_after: bool  # a person wrote to the lead after the lead's last message
    followups: tuple[
        datetime, ...
    ]  # follow-ups already sent (or being written) since the anchor, oldest first
    paused: bool = False
    handed_off: bool = False
    taken_over: bool = False
    opted_out: bool = False
    agent_messages_today: int = 0  # agent messages to this lead in the last 24 hours
    timezone: str = ""


def quiet_hours_parse(raw: str) -> tuple[int, int] | None:
    """ "21-9" → (21, 9); empty or equal hours → no quiet hours. Raises ValueError on anything else."""
    raw = (raw or "").strip()
    if not raw:
        return None
    start, _, end = raw.partition("-")
    quiet = (int(start), int(end))
    if not all(0 <= hour <= 23 for hour in quiet):
        raise ValueError(f"FOLLOWUP_QUIET_HOURS: hours are 0-23, got {raw!r}")
    return None if quiet[0] == quiet[1] else quiet


def timezone_of(*, name: str, team: str) -> tzinfo:
    """The lead's timezone as ManyChat writes it ("UTC-07", "UTC+05:30") or a zone name, else the team's."""
    match = _UTC_OFFSET.fullmatch(name or "")
    if match:
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours <= 14 and minutes < 60:
            return dt_timezone(sign * timedelta(hours=hours, minutes=minutes))
    for candidate in (name, team):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def in_quiet_hours(*, at: datetime, zone: tzinfo, quiet: tuple[int, int] | None) -> bool:
    if quiet is None:
        return False
    hour = at.astimezone(zone).hour
    start, end = quiet
    return start <= hour < end if start < end else hour >= start or hour < end


def followup_step_due(*, timeline: LeadTimeline, now: datetime, config: FollowUpConfig) -> int | Skip:
    """The follow-up step (1-based) to send now, or why none goes out."""
    if not config.delays:
        return Skip.DISABLED
    if timeline.opted_out:
        return Skip.OPTED_OUT
    if timeline.paused:
        return Skip.PAUSED
    if timeline.handed_off:
        return Skip.HANDED_OFF
    if timeline.taken_over or timeline.person_after:
        return Skip.TAKEN_OVER
    if (
        timeline.last_lead_at is None
        or timeline.anchor_at is None
        or timeline.anchor_at < timeline.last_lead_at
    ):
        return Skip.NOT_SILENT
    step = len(timeline.followups) + 1
    if step > len(config.delays):
        return Skip.ALL_SENT
    due_at = timeline.anchor_at + config.delays[step - 1]
    if timeline.followups:
        # A step that came late (quiet hours) keeps its gap to the one before.
        due_at = max(due_at, timeline.followups[-1] + config.delays[step - 1] - config.delays[step - 2])
    if now < due_at:
        return Skip.NOT_DUE
    if now >= timeline.last_lead_at + WINDOW - config.window_margin:
        return Skip.WINDOW_CLOSED
    zone = timezone_of(name=timeline.timezone, team=config.team_timezone)
    if in_quiet_hours(at=now, zone=zone, quiet=config.quiet):
        return Skip.QUIET_HOURS
    if config.lead_daily_cap and timeline.agent_messages_today >= config.lead_daily_cap:
        return Skip.LEAD_DAILY_CAP
    return step


def _normalise(text: str) -> str:
    # Accents folded: "arrete" is "arrête" typed on a phone.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


@lru_cache(maxsize=8)
def _phrases(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(p for p in (_normalise(word) for word in words) if p)


# Words that also mean something else ("para" is "for", "basta" "enough"): an opt-out only on their own.
_ALONE_ONLY = {"para", "pare", "basta", "baja", "cancelar", "cancel", "end", "quit"}


def is_opt_out(*, text: str, words: list[str]) -> bool:
    """The message asks for no more messages: it is one of the opt-out words or phrases ("STOP", "Stop!"),
    or a short message (up to four words) holding one as a whole word ("stop please", "arrête svp"). A longer
    message that mentions "stop" ("don't stop explaining the plans") is not an opt-out, and the words that
    mean something else too ("para", "basta") count only on their own."""
    said = _normalise(text)
    if not said:
        return False
    phrases = _phrases(tuple(words))
    if said in phrases:
        return True
    if len(said.split()) > 4:
        return False
    padded = f" {said} "
    return any(f" {phrase} " in padded for phrase in phrases if phrase not in _ALONE_ONLY)
