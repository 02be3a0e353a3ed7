from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agent.suggestions.flow import MAX_THEMES, OTHERS_LIMIT, suggestions_generate


class Command(BaseCommand):
    help = (
        "Cluster the approved corrections and bad examples since the active version by theme, ask the "
        "model for a minimal prompt edit per theme, save each as a draft and evaluate it; nothing goes live. "
        "--source outcomes instead compares the conversations of leads who booked or bought with those who "
        "did not and proposes selling tactics (never facts), each a draft, evaluated."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--user", required=True, help="username the drafts are saved as (may save drafts)"
        )
        parser.add_argument(
            "--source",
            choices=["corrections", "outcomes"],
            default="corrections",
            help="corrections (themes of approved corrections) or outcomes (selling tactics)",
        )
        parser.add_argument("--themes", type=int, default=MAX_THEMES, help="at most this many themes")
        parser.add_argument(
            "--others", type=int, default=OTHERS_LIMIT, help="other examples checked for regressions"
        )

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        if not 1 <= options["themes"] <= 10:
            raise CommandError("--themes must be 1 to 10.")
        if options["source"] == "outcomes":
            self._tactics(user=user, others=max(0, options["others"]))
            return
        try:
            made = suggestions_generate(
                user=user,
                max_themes=options["themes"],
                others_limit=max(0, options["others"]),
                on_progress=lambda line: self.stdout.write(line),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not made:
            self.stdout.write(
                "No theme with at least two approved corrections or bad examples since the release."
            )
        for s in made:
            r = s.results or {}
            if s.draft_version_id is None:
                self.stdout.write(f"✗ {s.theme}: {s.error}")
                continue
            self.stdout.write(
                f"v{s.draft_version.version} gain {s.gain:+d} · {s.theme} · theme {r.get('theme_passed')}/"
                f"{r.get('theme_total')} (before {r.get('theme_passed_before')}) · regressions "
                f"{len(r.get('regressions', []))} of {r.get('others_total')} · examples "
                + ", ".join(f"#{pk}" for pk in s.example_ids)
            )

    def _tactics(self, *, user, others: int) -> None:
        from agent.suggestions.tactics import TacticsRefused, tactics_generate

        try:
            made = tactics_generate(user=user, others_limit=others, on_progress=self.stdout.write)
        except TacticsRefused as refused:
            raise CommandError(refused.message) from refused
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for s in made:
            r = s.results or {}
            cited = ", ".join(f"#{pk}" for pk in r.get("citations", []))
            if s.draft_version_id is None:
                self.stdout.write(f"✗ {s.theme}: {s.error}")
                continue
            self.stdout.write(
                f"v{s.draft_version.version} gain {s.gain:+d} · {s.theme} · regressions "
                f"{len(r.get('regressions', []))} of {r.get('others_total')} · rests on messages {cited}"
            )
