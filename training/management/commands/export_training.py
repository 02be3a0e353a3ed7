"""python manage.py export_training --format openai-chat|preference [--output FILE]

Writes the approved training examples as OpenAI fine-tuning JSONL (stdout by default). A row that breaks
the format's rules is reported on stderr and left out.
"""

import os
import sys

from django.core.management.base import BaseCommand

from training.export import FORMAT_CHAT, FORMATS, training_export_lines


class Command(BaseCommand):
    help = "Export approved training examples as OpenAI fine-tuning JSONL (chat or preference pairs)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=FORMATS, default=FORMAT_CHAT, dest="fmt")
        parser.add_argument("--output", default="-", help="A file to write (default: standard output).")

    def handle(self, *args, fmt: str, output: str, **options):
        skipped: list[int] = []

        def report(example_id: int, errors: list[str]) -> None:
            skipped.append(example_id)
            self.stderr.write(f"Skipped example #{example_id}: {'; '.join(errors)}")

        written = 0
        to_file = output != "-"
        stream = open(output, "w", encoding="utf-8") if to_file else None  # noqa: SIM115
        try:
            for line in training_export_lines(fmt=fmt, on_skip=report):
                if stream is not None:
                    stream.write(line)
                else:
                    self.stdout.write(line, ending="")
                    self.stdout.flush()
                written += 1
        except BrokenPipeError:
            # The reader went away (`export_training | head`): stop quietly, as Unix tools do. Python's
            # recipe: point the real stdout at /dev/null so the interpreter's final flush cannot fail too.
            if self.stdout._out is sys.__stdout__:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.__stdout__.fileno())
            return
        finally:
            if stream is not None:
                stream.close()
        self.stderr.write(f"Wrote {written} {fmt} lines; skipped {len(skipped)}.")
