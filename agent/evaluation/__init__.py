"""Prompt evaluation: replay approved training examples through a prompt version and judge each reply.

services (start a run), runner (execute and judge: the `agent.evaluate_prompt` task), selectors (reads),
apis and views (the interfaces). The names below are the package's public surface.
"""

from agent.evaluation.runner import (
    JUDGE_INSTRUCTIONS,
    SIMILARITY_CEILING,
    SIMILARITY_FLOOR,
    STALE_AFTER,
    ExampleVerdict,
    evaluation_example_judge,
    evaluation_model_input,
    evaluation_result_record,
    evaluation_run_execute,
)
from agent.evaluation.selectors import (
    ComparisonRow,
    evaluation_comparison,
    evaluation_examples,
    evaluation_run_get,
    evaluation_run_latest,
)
from agent.evaluation.services import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    evaluation_run_create,
    evaluation_run_schedule,
)

__all__ = [
    "DEFAULT_LIMIT",
    "JUDGE_INSTRUCTIONS",
    "MAX_LIMIT",
    "SIMILARITY_CEILING",
    "SIMILARITY_FLOOR",
    "STALE_AFTER",
    "ComparisonRow",
    "ExampleVerdict",
    "evaluation_comparison",
    "evaluation_example_judge",
    "evaluation_examples",
    "evaluation_model_input",
    "evaluation_result_record",
    "evaluation_run_create",
    "evaluation_run_execute",
    "evaluation_run_get",
    "evaluation_run_latest",
    "evaluation_run_schedule",
]
