# The browser tests share the e2e harness: watched pages (a clean console is required), the demo data.
from tests.e2e.conftest import demo, new_page, page, pytest_runtest_call, shot  # noqa: F401
