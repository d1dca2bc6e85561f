"""schemathesis hooks for tests/e2e/test_schema_fuzz.py (loaded by its config file's `hooks`)."""

import copy
from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """An infer body the schema calls valid: its shape's N made the number of texts in its data.

    That they agree is the one rule of the body JSON Schema cannot state (the document says it in
    words), so without this nearly every generated body is rightly refused with 400, which the
    positive_data_acceptance check reports, and the 200 path is hardly tested. Bodies meant to
    be invalid are left as they are."""
    meta = case.meta
    body = case.body
    if (
        context.operation is None
        or not context.operation.path.endswith("/infer")
        or meta is None
        or not meta.generation.mode.is_positive
        or not isinstance(body, dict)
    ):
        return case
    body = case.body = copy.deepcopy(body)  # generated cases share their lists
    for tensor in body.get("inputs") or []:
        shape, data = tensor.get("shape"), tensor.get("data")
        if isinstance(shape, list) and shape and isinstance(data, list):
            shape[0] = len(data)
    return case
