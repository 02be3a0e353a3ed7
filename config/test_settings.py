"""The test suite's settings: the local configuration (DJANGO_DEBUG on unless the environment says
otherwise), since config.settings fails closed. Set in the environment, so the servers and workers the
tests start in subprocesses read the same. Tests that check production settings pass DJANGO_DEBUG=0."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from config.settings import *  # noqa: E402, F403

# Tests switch versions behind the services' back (factories): no in-process copy of the live release
# (prompts/live.py); its own tests turn it on.
PROMPT_LIVE_CACHE_SECONDS = 0.0
