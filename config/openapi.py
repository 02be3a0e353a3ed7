"""drf-spectacular post-processing: document the error answers every operation can give.

Every API answers 400 (bad input, naming the field), 401/403 (no or insufficient credentials; session
auth makes DRF answer 403 to anonymous callers), 404 (no such object, or not yours) and 429 (rate
limited) as a JSON object; the views do not repeat that on each operation.
"""

from typing import Any

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail`, or `error` (and `field`), or field names mapped to lists of messages.",
    "additionalProperties": True,
}
ERRORS = {
    "400": "Bad input; the body names the field.",
    "401": "Missing or invalid credentials.",
    "403": "Not allowed for your role (or not signed in).",
    "404": "No such object, or not one you may see.",
    "429": "Rate limited; see Retry-After.",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                # <int:...> path converters match digits only: a negative id never reaches a view.
                if parameter.get("in") == "path" and parameter.get("schema", {}).get("type") == "integer":
                    parameter["schema"]["minimum"] = 0
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result


from drf_spectacular.openapi import AutoSchema as _SpectacularAutoSchema  # noqa: E402


class AutoSchema(_SpectacularAutoSchema):
    """Component names for the nested `InputSerializer` / `OutputSerializer` of each `<Entity><Action>Api`.

    drf-spectacular names a serializer by its class name alone, so every API's nested `InputSerializer`
    would be the one component "Input"; this names it after its API instead ("ProposalCreateInput").
    """

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and inner in ("InputSerializer", "OutputSerializer"):
            return outer.removesuffix("Api") + inner.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
