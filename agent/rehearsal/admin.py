"""Scenarios, shared checks and the judge's calibration set are edited here; runs and plays are read-only
(written by agent.rehearsal.services only)."""

from django.contrib import admin

from agent.rehearsal.models import JudgeCalibration, RehearsalPlay, RehearsalRun, Scenario, SharedCheck


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "channel", "max_turns", "is_active", "created_at")
    list_filter = ("channel", "is_active")
    search_fields = ("title", "persona", "goal")
    raw_id_fields = ("source_conversation",)
    readonly_fields = ("created_by", "created_at", "updated_at")


@admin.register(SharedCheck)
class SharedCheckAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "never", "enabled")
    list_filter = ("kind", "never", "enabled")


@admin.register(JudgeCalibration)
class JudgeCalibrationAdmin(admin.ModelAdmin):
    list_display = ("id", "rubric", "expected_pass", "note")
    list_filter = ("expected_pass",)
    search_fields = ("rubric", "note")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RehearsalRun)
class RehearsalRunAdmin(_ReadOnly):
    list_display = (
        "id",
        "version",
        "against_version",
        "repeats",
        "status",
        "total",
        "judge_trusted",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("version", "against_version")


@admin.register(RehearsalPlay)
class RehearsalPlayAdmin(_ReadOnly):
    list_display = (
        "id",
        "run",
        "side",
        "scenario",
        "repeat",
        "status",
        "passed",
        "ended",
        "turns",
        "attempts",
    )
    list_filter = ("status", "side", "passed")
    list_select_related = ("run", "scenario")
