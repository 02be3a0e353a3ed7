import pytest

from prompts.selectors import prompt_version_diff
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db


def test_a_changed_last_line_without_newline_stays_on_its_own_line():
    old = PromptVersionFactory(content="Rule one.\nAlways answer in the lead's language.")
    new = PromptVersionFactory(content="Rule one.\nNever promise delivery dates.")
    diff = prompt_version_diff(version=new, against=old).splitlines()
    assert "-Always answer in the lead's language." in diff
    assert "+Never promise delivery dates." in diff
    assert diff[0] == f"--- v{old.version}" and diff[1] == f"+++ v{new.version}"
