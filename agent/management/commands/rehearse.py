"""python manage.py rehearse --version N [--against active|M|none] [--repeats 3] [--tag T] [--resume RUN]

Plays every active scenario (or those tagged) against prompt version vN, each --repeats times, beside the
active version by default, with a progress bar; then prints both scores with their spread, flaky scenarios,
the failed checks and the release gate. With a broker (CELERY_BROKER_URL) the plays are Celery tasks run by
the workers in parallel and this command follows them; without one (or with --inline) it plays them itself.
--resume RUN finishes a run whose worker died, without replaying the plays that finished.
"""

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agent.rehearsal import selectors, services, tasks
from agent.rehearsal.models import RehearsalRun
from prompts.models import PromptVersion
from prompts.selectors import active_prompt_version


def _version(number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(version=number).first()
    if version is None:
        raise CommandError(f"There is no prompt version v{number}.")
    return version


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


class Command(BaseCommand):
    help = (
        "Rehearse a prompt version with simulated leads, several times per scenario, beside another version."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version N` names the prompt version here, not Django's "print the version" flag.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", type=int, help="The version number to rehearse, e.g. 7 for v7.")
        parser.add_argument(
            "--against", default="active", help='"active" (default), a version number, or "none".'
        )
        parser.add_argument("--repeats", type=int, default=None, help="Plays per scenario (default 3).")
        parser.add_argument("--tag", action="append", default=None, help="Only scenarios with this tag.")
        parser.add_argument(
            "--resume", type=int, default=None, help="Finish this run instead of starting one."
        )
        parser.add_argument("--inline", action="store_true", help="Play in this process even with a broker.")
        parser.add_argument("--poll", type=float, default=0.5, help="Seconds between progress checks.")

    def handle(self, *args, **options):
        if options["resume"] is not None:
            run = RehearsalRun.objects.filter(pk=options["resume"]).first()
            if run is None:
                raise CommandError(f"There is no rehearsal run #{options['resume']}.")
            play_ids = services.rehearsal_run_resume(run_id=run.pk)
        else:
            if options["version"] is None:
                raise CommandError("Give --version N (or --resume RUN).")
            version = _version(options["version"])
            against = self._against(options["against"], version)
            try:
                run = services.rehearsal_run_create(
                    version=version,
                    against=against,
                    repeats=options["repeats"],
                    tags=options["tag"],
                    schedule=False,
                )
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from error
            play_ids = None
        inline = options["inline"] or settings.CELERY_TASK_ALWAYS_EAGER
        started = time.monotonic()
        with tqdm(total=run.total, desc=f"rehearsal #{run.pk}", unit="play", file=self.stderr._out) as bar:
            if inline:
                ids = play_ids if play_ids is not None else services.rehearsal_run_start(run_id=run.pk)
                for play_id in ids:
                    services.rehearsal_play_execute(play_id=play_id)
                    bar.update(selectors.rehearsal_run_progress(run=run).finished - bar.n)
            else:
                if play_ids is None:
                    tasks.start_run.delay(run.pk)
                else:
                    for play_id in play_ids:
                        tasks.play.delay(play_id)
                while True:
                    run.refresh_from_db(fields=["status"])
                    bar.update(selectors.rehearsal_run_progress(run=run).finished - bar.n)
                    if run.is_finished:
                        break
                    time.sleep(options["poll"])
            bar.update(selectors.rehearsal_run_progress(run=run).finished - bar.n)
        self._print(run_id=run.pk, seconds=time.monotonic() - started)

    def _against(self, value: str, version: PromptVersion) -> PromptVersion | None:
        if value == "none":
            return None
        if value == "active":
            active = active_prompt_version()
            return active if active is not None and active.pk != version.pk else None
        if not value.isdigit():
            raise CommandError('--against is "active", a version number, or "none".')
        return _version(int(value))

    def _print(self, *, run_id: int, seconds: float) -> None:
        run = selectors.rehearsal_run_get(run_id=run_id)
        if run is None:
            raise CommandError(f"Rehearsal run #{run_id} disappeared.")
        report = selectors.rehearsal_report(run=run)
        out = self.stdout
        out.write(f"Rehearsal #{run.pk}: {run.get_status_display().lower()} in {seconds:.1f}s")
        for summary in (report.draft, report.baseline):
            if summary is None:
                continue
            side = summary
            spread = f"{_pct(side.spread[0])}–{_pct(side.spread[1])}" if side.spread else "—"
            cost = f", ${side.cost_usd:.4f}" if side.cost_usd is not None else ""
            asserted, judged = side.asserted, side.judged
            out.write(
                f"  v{side.version_number}: score {_pct(side.score)} (spread {spread}, "
                f"sd {side.stdev or 0:.2f}), {side.passed}/{side.plays} plays passed, {side.flaky} flaky; "
                f"asserted {asserted['passed']}/{asserted['passed'] + asserted['failed']}, "
                f"judged {judged['passed']}/{judged['passed'] + judged['failed']} "
                f"({judged['needs_person']} need a person); {side.tokens} tokens{cost}; "
                f"calls: {side.agent_calls} agent, {side.lead_calls} lead, {side.judge_calls} judge"
            )
        for row in report.rows:
            for label, played in (("tested", row.draft), ("compared", row.baseline)):
                if played is None:
                    continue
                for cell in played.plays:
                    for failure in cell.failed:
                        out.write(f"  ✗ {row.title} ({label}, repeat {cell.repeat}): {failure['reason']}")
                if played.flaky:
                    out.write(
                        f"  ~ {row.title} ({label}) is flaky: passed {played.passes}/{len(played.done)}"
                    )
        gate = report.gate
        out.write(f"Gate: {'OPEN' if gate.passed else 'CLOSED'}: " + " ".join(gate.reasons))
