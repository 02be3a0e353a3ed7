"""Names of the decision fields, whichever side of the approved_* -> decided_* rename the model is on."""

from training.models import TrainingExample

_NAMES = {field.name for field in TrainingExample._meta.get_fields()}
DECIDED_BY = "decided_by" if "decided_by" in _NAMES else "approved_by"
DECIDED_AT = "decided_at" if "decided_at" in _NAMES else "approved_at"
