"""Fill the database named by DATABASE_URL with a large, realistic dataset for the benchmarks.

    .venv/bin/python bench/generate_dataset.py                 # 50,000 leads, 1,000,000 messages, ...
    .venv/bin/python bench/generate_dataset.py --leads 500 --messages 10000 --examples 1000 --seed 7

The options and what the data looks like: bench/dataset/generator.py (word lists in bench/dataset/words.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import django  # noqa: E402

django.setup()

from bench.dataset.generator import Command  # noqa: E402

if __name__ == "__main__":
    Command().run_from_argv(["bench/generate_dataset.py", "generate_dataset", *sys.argv[1:]])
