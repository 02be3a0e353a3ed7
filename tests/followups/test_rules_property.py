"""Property test: 1,000 random lead timelines (messages, replies, handoffs, pauses, takeovers, opt-outs, quiet
hours, window expiries) run through the follow-up rule as the beat would, every 10 minutes for two days.

What a follow-up may never do is checked from the timeline itself, not from the rule's own code: 0 sent
outside the lead's 24-hour window, in its quiet hours, after a reply, a handoff, a pause, a takeover or an
opt-out, past the lead's daily message cap, and never more than the configured number per silence.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.followups.rules import (
    WINDOW,
    FollowUpConfig,
    LeadTimeline,
    Skip,
    followup_step_due,
    in_quiet_hours,
    is_opt_out,
    quiet_hours_parse,
    timezone_of,
)

TIMELINES = 1000
TICK = timedelta(minutes=10)
HORIZON = timedelta(hours=48)
ZONES = ["UTC-07", "UTC+05:30", "UTC+01", "Europe/Rome", "America/New_York", "Asia/Tokyo", "", "not/a zone"]
WORDS = ["stop", "unsubscribe", "stopp", "basta", "para", "arrête", "abmelden"]


@dataclass
class Event:
    at: datetime
    kind: str  # lead, agent, operator, handoff, pause, takeover, opt_out


@dataclass
class Sim:
    """One lead's world: scripted events, plus the follow-ups the rule sent."""

    events: list[Event]
    zone: str
    sent: list[tuple[datetime, int, datetime]] = field(default_factory=list)  # (at, step, anchor_at)


def _config(rng: random.Random) -> FollowUpConfig:
    delays = rng.choice([(4.0, 20.0), (4.0,), (1.0, 6.0), (2.0, 10.0, 22.0)])
    quiet = rng.choice(["21-9", "22-7", "0-6", "", "20-23"])
    return FollowUpConfig(
        delays=tuple(timedelta(hours=h) for h in delays),
        quiet=quiet_hours_parse(quiet),
        team_timezone=rng.choice(["Europe/Berlin", "UTC", "America/Chicago"]),
        window_margin=timedelta(minutes=rng.choice([0, 15, 30])),
        lead_daily_cap=rng.choice([0, 3, 30]),
    )


def _script(rng: random.Random, start: datetime) -> list[Event]:
    events = []
    at = start
    for _ in range(rng.randint(1, 6)):
        at += timedelta(minutes=rng.randint(1, 60 * rng.choice([1, 6, 20, 30])))
        events.append(Event(at, "lead"))
        if rng.random() < 0.9:  # the agent answers (or not: a failed turn)
            events.append(Event(at + timedelta(seconds=rng.randint(2, 40)), "agent"))
        roll = rng.random()
        for kind, p in (("handoff", 0.05), ("pause", 0.04), ("takeover", 0.04), ("operator", 0.04)):
            if roll < p:
                events.append(Event(at + timedelta(minutes=rng.randint(1, 600)), kind))
                break
            roll -= p
        if rng.random() < 0.06:
            events.append(Event(at + timedelta(minutes=rng.randint(1, 900)), "opt_out"))
    return sorted(events, key=lambda e: e.at)


def _timeline(sim: Sim, now: datetime) -> LeadTimeline:
    """What the selector would read at `now` (only what happened up to now)."""
    past = [e for e in sim.events if e.at <= now]
    lead_at = [e.at for e in past if e.kind in ("lead", "opt_out")]
    last_lead = max(lead_at) if lead_at else None
    replies = [e.at for e in past if e.kind == "agent" and last_lead and e.at >= last_lead]
    anchor = max(replies) if replies else None
    day_ago = now - timedelta(hours=24)
    return LeadTimeline(
        last_lead_at=last_lead,
        anchor_at=anchor,
        person_after=any(e.kind == "operator" and last_lead and e.at >= last_lead for e in past),
        followups=tuple(at for at, _, a in sim.sent if a == anchor),
        paused=any(e.kind == "pause" for e in past),
        handed_off=any(e.kind == "handoff" for e in past),
        taken_over=any(e.kind == "takeover" for e in past),
        opted_out=any(e.kind == "opt_out" for e in past),
        agent_messages_today=sum(1 for e in past if e.kind == "agent" and e.at >= day_ago)
        + sum(1 for at, _, _ in sim.sent if at >= day_ago),
        timezone=sim.zone,
    )


def _violations(sim: Sim, config: FollowUpConfig) -> list[str]:
    """Every rule, checked from the events (independently of followup_step_due)."""
    problems = []
    zone = timezone_of(name=sim.zone, team=config.team_timezone)
    per_anchor: dict[datetime, int] = {}
    for at, _step, anchor in sim.sent:
        before = [e for e in sim.events if e.at <= at]
        last_lead = max(e.at for e in before if e.kind in ("lead", "opt_out"))
        if at >= last_lead + WINDOW:
            problems.append(f"outside the window at {at}")
        if in_quiet_hours(at=at, zone=zone, quiet=config.quiet):
            problems.append(f"in quiet hours at {at} ({at.astimezone(zone):%H:%M} local)")
        if any(e.kind == "lead" and e.at > anchor for e in before):
            problems.append(f"after the lead replied, at {at}")
        for kind in ("handoff", "pause", "takeover", "opt_out"):
            if any(e.kind == kind for e in before):
                problems.append(f"after a {kind} at {at}")
        if any(e.kind == "operator" and e.at >= last_lead for e in before):
            problems.append(f"after a person wrote, at {at}")
        if at < anchor + config.delays[0]:
            problems.append(f"before the first delay at {at}")
        day_ago = at - timedelta(hours=24)
        sent_today = sum(1 for e in before if e.kind == "agent" and e.at >= day_ago) + sum(
            1 for other, _, _ in sim.sent if day_ago <= other < at
        )
        if config.lead_daily_cap and sent_today >= config.lead_daily_cap:
            problems.append(f"past the daily message cap ({sent_today}) at {at}")
        per_anchor[anchor] = per_anchor.get(anchor, 0) + 1
    if any(count > len(config.delays) for count in per_anchor.values()):
        problems.append(f"more than {len(config.delays)} follow-ups to one silence: {per_anchor}")
    return problems


def test_one_thousand_random_timelines_never_break_a_rule():
    rng = random.Random(20261207)
    sent_total = 0
    skipped: dict[str, int] = {}
    for index in range(TIMELINES):
        config = _config(rng)
        start = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 24 * 60))
        sim = Sim(events=_script(rng, start), zone=rng.choice(ZONES))
        now = start
        while now <= start + HORIZON:
            timeline = _timeline(sim, now)
            due = followup_step_due(timeline=timeline, now=now, config=config)
            if isinstance(due, int):
                anchor = timeline.anchor_at
                assert anchor is not None
                sim.sent.append((now, due, anchor))
            else:
                skipped[due.value] = skipped.get(due.value, 0) + 1
            now += TICK
        problems = _violations(sim, config)
        assert not problems, f"timeline {index}: {problems[:3]}"
        sent_total += len(sim.sent)
    # The test is not vacuous: follow-ups went out, and every kind of refusal happened.
    assert sent_total > 300
    for reason in (
        Skip.LEAD_DAILY_CAP,
        Skip.QUIET_HOURS,
        Skip.WINDOW_CLOSED,
        Skip.OPTED_OUT,
        Skip.HANDED_OFF,
        Skip.PAUSED,
        Skip.TAKEN_OVER,
        Skip.NOT_SILENT,
        Skip.ALL_SENT,
    ):
        assert skipped.get(reason.value, 0) > 0, reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", True),
        ("Stop!", True),
        ("stop please", True),
        ("please unsubscribe me", True),
        ("Arrête", True),
        ("arrete svp", True),
        ("basta", True),
        ("Para.", True),
        ("info para mi hermana", False),  # "para" is "for": only on its own
        ("basta così grazie mille", False),
        ("don't stop explaining the plans to me", False),
        ("stopwatch", False),
        ("", False),
    ],
)
def test_opt_out_words(text, expected):
    assert is_opt_out(text=text, words=WORDS) is expected


@pytest.mark.parametrize(
    ("name", "offset_hours"),
    [("UTC-07", -7), ("UTC+05:30", 5.5), ("UTC+1", 1), ("Asia/Tokyo", 9), ("nonsense", 1), ("", 1)],
)
def test_lead_timezone_else_the_team(name, offset_hours):
    zone = timezone_of(name=name, team="Europe/Rome")
    winter = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert winter.astimezone(zone).utcoffset() == timedelta(hours=offset_hours)


def test_quiet_hours_wrap_midnight():
    quiet = quiet_hours_parse("21-9")
    rome = ZoneInfo("Europe/Rome")
    assert in_quiet_hours(at=datetime(2026, 12, 1, 21, 30, tzinfo=rome), zone=rome, quiet=quiet)
    assert in_quiet_hours(at=datetime(2026, 12, 1, 8, 59, tzinfo=rome), zone=rome, quiet=quiet)
    assert not in_quiet_hours(at=datetime(2026, 12, 1, 9, 0, tzinfo=rome), zone=rome, quiet=quiet)
    assert quiet_hours_parse("") is None
    with pytest.raises(ValueError):
        quiet_hours_parse("25-3")
