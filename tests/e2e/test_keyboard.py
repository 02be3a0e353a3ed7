"""The main journey with the keyboard alone: an operator signs in, finds the lead with the type-ahead, picks
an agent reply, marks it bad with feedback and submits; a manager approves it in the review queue.

No clicks and no form filling by selector: only Tab, arrow keys, Enter, Space and typed text. The test only
reads the page (which element has focus) to know when to stop tabbing.
"""

import pytest

from tests.e2e.conftest import PASSWORD
from training.models import ExampleStatus, ExampleType, TrainingExample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_TABS = 120


def focused_matches(page, selector: str) -> bool:
    return page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector)


def tab_to(page, selector: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches `selector`; fail if it never does."""
    for _ in range(MAX_TABS):
        if focused_matches(page, selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"Tab never reached {selector}")


def keyboard_login(page, username: str) -> None:
    page.goto("/accounts/login/")
    tab_to(page, "input[name=username]")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert focused_matches(page, "input[name=password]")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/accounts/login/" not in page.url


def test_submit_from_a_conversation_and_approve_with_the_keyboard_alone(demo, new_page, shot):
    operator = new_page("operator")
    keyboard_login(operator, "operator")
    operator.goto("/dashboard/training/submit/")

    # The type-ahead: type part of the name, arrow down to the match, Enter opens the conversation.
    tab_to(operator, "#lead-search")
    operator.keyboard.type("marchetti")
    operator.locator("#lead-options [role=option][data-id='1']").wait_for()
    # The list first showed the recent leads (on focus); wait for the typed search's single match.
    operator.locator("#lead-options [role=option]").nth(1).wait_for(state="detached")
    assert operator.locator("#lead-search").get_attribute("aria-expanded") == "true"
    shot(operator, "typeahead")
    operator.keyboard.press("ArrowDown")  # one match: the arrow keys keep it active
    active = operator.locator("#lead-search").get_attribute("aria-activedescendant")
    assert active == "lead-option-1"
    with operator.expect_navigation():
        operator.keyboard.press("Enter")
    assert "lead=1" in operator.url

    # Tab to the third agent reply and choose it with Enter.
    replies = operator.locator("[data-transcript] [data-message-id]")
    target = replies.nth(2).get_attribute("data-message-id")
    tab_to(operator, f"[data-message-id='{target}']")
    operator.keyboard.press("Enter")
    assert operator.locator(f"[data-message-id='{target}']").get_attribute("aria-pressed") == "true"
    assert operator.locator("#id_conv-message_id").input_value() == target

    # No type is preselected: Tab into the group lands on the first radio; the arrow keys choose "bad".
    tab_to(operator, "#conversation-form input[type=radio][name=conv-example_type]")
    operator.keyboard.press("Space")
    operator.keyboard.press("ArrowDown")
    assert operator.locator("#conversation-form input[type=radio][value=bad]").is_checked()
    tab_to(operator, "#conversation-form textarea[name=conv-feedback]")
    operator.keyboard.type("Named a price before asking about the budget.")
    tab_to(operator, "#conversation-form button[type=submit]")
    shot(operator, "ready-to-submit")
    with operator.expect_navigation():
        operator.keyboard.press("Enter")
    # Back in the conversation, with the next reply selected and scrolled into view.
    assert "/dashboard/training/submit/?lead=1&message=" in operator.url
    box = operator.locator("[data-transcript] .bubble.selected").bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900
    example = TrainingExample.objects.get()
    assert (str(example.message_id), example.example_type) == (target, ExampleType.BAD)
    assert example.status == ExampleStatus.PENDING

    # The manager approves it in the review queue: j moves to the first card, a approves.
    manager = new_page("manager")
    keyboard_login(manager, "manager")
    manager.goto("/dashboard/training/review/")
    manager.locator(f"#example-{example.pk}").wait_for()
    manager.keyboard.press("j")
    assert focused_matches(manager, f"#example-{example.pk}")
    with manager.expect_navigation():
        manager.keyboard.press("a")
    shot(manager, "approved")
    example.refresh_from_db()
    assert example.status == ExampleStatus.APPROVED and example.decided_by.username == "manager"
