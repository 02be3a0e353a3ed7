"""python manage.py evaluate_prompt <version> [--against <version>] [--limit N]

Replays approved training examples through a prompt version (and the --against version, on the same
examples), with a progress bar, then prints the pass rates side by side and the tokens used.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agent import evaluation
from agent.models import EvaluationRun
from prompts.models import PromptVersion


def _version(number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(version=number).first()
    if version is None:
        raise CommandError(f"There is no prompt version v{number}.")
    return version


def _rate(run: EvaluationRun) -> str:
    if not run.processed:
        return "—"
    return f"{run.passed}/{run.processed} ({100 * run.passed / run.processed:.0f}%)"


class Command(BaseCommand):
    help = "Test a prompt version against the approved training examples (optionally beside another version)."

    def add_arguments(self, parser):
        parser.add_argument("version", type=int, help="The version number to test, e.g. 7 for v7.")
        parser.add_argument("--against", type=int, default=None, help="A version number to compare with.")
        parser.add_argument(
            "--limit",
            type=int,
            default=evaluation.DEFAULT_LIMIT,
            help=f"At most this many examples per version (default {evaluation.DEFAULT_LIMIT}).",
        )

    def handle(self, *args, version: int, against: int | None, limit: int, **options):
        tested = _version(version)
        baseline = _version(against) if against is not None else None
        try:
            run = evaluation.evaluation_run_create(
                version=tested, against=baseline, limit=limit, schedule=False
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        runs = [run] + ([run.baseline_run] if run.baseline_run_id else [])
        for each in runs:
            label = f"v{each.prompt_version.version}"
            with tqdm(total=each.total, desc=label, unit="example", file=self.stderr._out) as bar:

                def progress(_run: EvaluationRun, done: int, total: int, bar: tqdm = bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                status = evaluation.evaluation_run_execute(run_id=each.pk, on_progress=progress)
            if status != "done":
                each.refresh_from_db(fields=["error"])
                raise CommandError(f"The run of {label} {status}: {each.error}")
        for each in runs:
            each.refresh_from_db()
        self._report(runs)

    def _report(self, runs: list[EvaluationRun]) -> None:
        run = runs[0]
        baseline = runs[1] if len(runs) > 1 else None
        write = self.stdout.write
        write(f"Evaluation run #{run.pk}: {run.processed} examples (limit {run.example_limit})")
        header = f"{'':<10}{'v' + str(run.prompt_version.version):>18}"
        if baseline is not None:
            header += f"{'v' + str(baseline.prompt_version.version):>18}"
        write(header)
        line = f"{'pass rate':<10}{_rate(run):>18}"
        if baseline is not None:
            line += f"{_rate(baseline):>18}"
        write(line)
        line = f"{'tokens':<10}{run.tokens:>18,}"
        if baseline is not None:
            line += f"{baseline.tokens:>18,}"
        write(line)
        write(f"Tokens used in all: {sum(each.tokens for each in runs):,}")
        failed = (
            run.results.filter(passed=False)
            .select_related("training_example")
            .order_by("training_example_id")
        )
        for result in failed:
            write(
                f"  FAIL v{run.prompt_version.version} example #{result.training_example_id} "
                f"({result.training_example.example_type}): {result.reason}"
            )
