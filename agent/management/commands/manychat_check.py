"""`manage.py manychat_check`: is the ManyChat account ready for this agent?

Reads the page info with MANYCHAT_API_TOKEN, then checks that every tag and custom field the settings name
exists in the account (ManyChat documents that a tag or field an action names "must exist in your bot";
manychat-conformance.md, table rows 8 and 20). Prints what to create; exits 1 when something is missing,
2 when the API cannot be read at all.
"""

from django.core.management.base import BaseCommand, CommandError

from agent.manychat import ManyChatError
from agent.manychat_platform import services as manychat_sync


class Command(BaseCommand):
    help = (
        "Check the ManyChat account: page info, and every tag and custom field the MANYCHAT_* settings name."
    )

    def handle(self, *args, **options) -> None:
        try:
            report = manychat_sync.account_check()
        except ManyChatError as exc:
            raise CommandError(f"ManyChat API: {exc} ({exc.failure.explanation})", returncode=2) from exc
        page = report.page
        self.stdout.write(
            f"Page: {page.get('name') or '?'} (id {page.get('id') or '?'})"
            + ("" if page.get("is_pro", True) else "  -- not on a Pro plan: the API and Dev Tools need Pro")
        )
        for need in report.needs:
            mark = "ok     " if need.present else "MISSING"
            self.stdout.write(f"  {mark} {need.kind} {need.name!r}  ({need.setting})")
        missing = [need for need in report.needs if not need.present]
        if not missing:
            self.stdout.write(self.style.SUCCESS("Everything the settings name exists in ManyChat."))
            return
        self.stdout.write("Create in ManyChat (Settings → Tags / Settings → Fields), or change the setting:")
        for need in missing:
            what = "tag" if need.kind == "tag" else f"custom field of type {need.field_type}"
            self.stdout.write(f"  - {what} {need.name!r}  (named by {need.setting})")
        raise CommandError(f"{len(missing)} missing in ManyChat", returncode=1)
