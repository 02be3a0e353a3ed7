"""Every activity verb the code records reads as a sentence (leads/activity_text.py), never as its code."""

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from agent.outcomes.models import BookingState
from leads import services
from leads.activity_text import SENTENCES, activity_sentence
from leads.models import Activity
from prompts.releases.models import ExperimentStatus
from tests.factories import LeadFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ("leads", "agent", "prompts", "training", "config")
RECORDERS = {"activity_record", "lead_flag_for_human"}

# Calls whose verb is computed: (file, expression) -> every verb it can produce.
COMPUTED = {
    ("agent/outcomes/bookings.py", "f'booking.{notice.state.value}'"): [
        f"booking.{s}" for s in BookingState.values
    ],
    ("prompts/releases/services.py", "f'release.experiment_{status}'"): [
        f"release.experiment_{s}" for s in ExperimentStatus.values if s != ExperimentStatus.RUNNING
    ],
    ("training/services.py", "verb"): ["training.approved", "training.rejected"],
    ("leads/services.py", "verb"): ["lead.handed_off"],
}


def _recorded_verbs() -> tuple[set[str], list[str]]:
    verbs: set[str] = set()
    unknown: list[str] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            constants = {
                target.id: node.value.value
                for node in ast.walk(tree)
                if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name == "lead_flag_for_human":
                    defaults = [d for d in node.args.kw_defaults if isinstance(d, ast.Constant)]
                    verbs.update(d.value for d in defaults if isinstance(d.value, str) and "." in d.value)
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in RECORDERS:
                    continue
                for keyword in node.keywords:
                    if keyword.arg != "verb":
                        continue
                    value = keyword.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        verbs.add(value.value)
                    elif isinstance(value, ast.Name) and value.id in constants:
                        verbs.add(constants[value.id])
                    elif (relative, ast.unparse(value)) in COMPUTED:
                        verbs.update(COMPUTED[(relative, ast.unparse(value))])
                    else:
                        unknown.append(f"{relative}:{node.lineno} verb={ast.unparse(value)}")
    return verbs, unknown


def test_every_recorded_verb_has_a_sentence():
    verbs, unknown = _recorded_verbs()
    assert not unknown, f"add these computed verbs to COMPUTED and a sentence for each: {unknown}"
    assert len(verbs) > 30  # the scan found the recorders (a broken scan would pass vacuously)
    assert {"lead.bot_paused", "agent.skipped_paused", "training.approved", "booking.cancelled"} <= verbs
    missing = sorted(verbs - SENTENCES.keys())
    assert not missing, f"give these activity verbs a sentence in leads/activity_text.py: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("verb", sorted(SENTENCES))
@pytest.mark.parametrize("with_actor", [True, False])
def test_each_sentence_is_words_not_the_code(verb, with_actor):
    actor = UserFactory(first_name="Hannah", last_name="Berg") if with_actor else None
    activity = Activity(verb=verb, actor=actor, data={"to": "lost", "version": 3, "example_id": 7})
    sentence = activity_sentence(activity)
    assert sentence and sentence[0].isupper()
    assert verb not in sentence and "_" not in sentence and "None" not in sentence


@pytest.mark.django_db
def test_the_lead_page_tells_what_happened_in_sentences(client, operator):
    operator.first_name, operator.last_name = "Hannah", "Berg"
    operator.save(update_fields=["first_name", "last_name"])
    lead = LeadFactory()
    services.lead_pause_bot(lead=lead, actor=operator)
    services.activity_record(verb="agent.skipped_paused", lead=lead, data={"message_id": 1})
    services.lead_set_status(lead=lead, status="lost", actor=operator)
    client.force_login(operator)
    html = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    assert "Hannah Berg paused the bot" in html
    assert "A message arrived while the bot was paused; it stayed silent" in html
    assert "Hannah Berg marked the lead lost" in html
    for code in ("lead.bot_paused", "agent.skipped_paused", "lead.status_changed"):
        assert code not in html


def test_an_unknown_verb_still_reads_as_words():
    assert activity_sentence(Activity(verb="lead.something_old", data={})) == "Something old"
