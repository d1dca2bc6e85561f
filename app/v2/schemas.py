"""Bodies of the Open Inference Protocol (KServe v2 / Triton) REST API, for parsing and docs."""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from app.lifecycle.validation import NOT_EMPTY_PATTERN
from app.oip.contract import INPUT, OUTPUTS
from app.v2.codec import HEADER_LENGTH


def _json_integer(value: Any) -> Any:
    """Refuse what pydantic's lax int would take but a JSON Schema integer is not: true/false
    and numbers in strings ("2"). 2.0 stays an integer, as in JSON Schema."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# The body's numbers and flags as the OpenAPI document types them: a JSON integer (a constraint
# goes before JSON_INTEGER, or it is lost from the document), and true or false (pydantic's lax
# bool would also take 0, 1 and "yes").
JSON_INTEGER = BeforeValidator(_json_integer)
NonNegative = Annotated[int, Field(ge=0), JSON_INTEGER]
Boolean = Annotated[bool, Strict()]


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_size: NonNegative | None = Field(
        None, description="Binary tensor extension: the input's data follows the JSON header"
    )


_TEXT: dict[str, JsonValue] = {"type": "string", "minLength": 1, "pattern": NOT_EMPTY_PATTERN}
# A row of shape [N, 1] sent nested.
_ROW: dict[str, JsonValue] = {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": 1}
_SHAPE: dict[str, JsonValue] = {
    "type": "array",
    "prefixItems": [{"type": "integer", "minimum": 1}, {"type": "integer", "const": 1}],
    "minItems": 1,
    "maxItems": 2,
}


# Constraints that only the docs carry (json_schema_extra) are checked by app/v2/tensors.py, which
# says more than pydantic would about what is wrong.
class RequestInput(BaseModel):
    name: str = Field(json_schema_extra={"enum": [INPUT]})
    datatype: str = Field(json_schema_extra={"enum": ["BYTES"]})
    shape: Annotated[list[NonNegative], WithJsonSchema(_SHAPE)] = Field(
        description="[N] or [N, 1]: N texts, N >= 1"
    )
    parameters: InputParameters = InputParameters()
    data: list[Any] | None = Field(
        None,
        description="The texts, row-major, flat or nested; none empty or whitespace-only",
        json_schema_extra={"items": {"anyOf": [_TEXT, _ROW]}, "minItems": 1},
    )


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data: Boolean | None = Field(
        None, description="Send this output as binary data; default: `binary_data_output`"
    )
    classification: Annotated[int, JSON_INTEGER] = Field(
        0,
        description="Triton's classification extension: not supported",
        json_schema_extra={"minimum": 0, "maximum": 0},
    )


class RequestOutput(BaseModel):
    name: str = Field(json_schema_extra={"enum": list(OUTPUTS)})
    parameters: OutputParameters = OutputParameters()


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_output: Boolean = Field(
        False, description="Send every output as binary data unless the output says otherwise"
    )


class InferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "TEXT",
                            "datatype": "BYTES",
                            "shape": [2],
                            "data": ["What a lovely film.", "Two hours I will never get back."],
                        }
                    ],
                }
            ]
        }
    )
    id: str | None = Field(None, description="Echoed in the response")
    parameters: RequestParameters = RequestParameters()
    inputs: list[RequestInput] = Field(min_length=1, json_schema_extra={"maxItems": 1})
    outputs: list[RequestOutput] | None = Field(None, description="Default: every output")


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for the variable (batch) dimension")
    parameters: dict[str, Any] | None = None


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ResponseOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size` when the data follows the JSON header"
    )
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class OipError(BaseModel):
    error: str


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its sub-models written in place: the infer route reads its
    body itself (JSON or binary), so FastAPI cannot list the model among its components."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inlined(schema, definitions)
    return inlined


def _error(description: str) -> dict[str, Any]:
    return {"model": OipError, "description": description}


OIP_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: _error("unknown model name or version"),
    503: _error("the model is not loaded (yet), failed verification, or is shutting down"),
    "default": _error("any other error, in the protocol's shape"),
}

INFER_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error(
        "a bad request: not JSON, not the declared tensors, an empty or over-long text, too many "
        "texts, an unknown output"
    ),
    401: _error("API_KEY is set and the request lacks it"),
    413: _error("the body exceeds MAX_BODY_BYTES"),
    429: _error("the queue is full; retry after the Retry-After header's seconds"),
    500: _error("inference failed for this batch; the message carries an error id"),
    **OIP_ERROR_RESPONSES,
}


def _json_body_schema() -> dict[str, Any]:
    """InferRequest's schema for a body that is all JSON: each input carries its `data` (a
    `binary_data_size` there other than null is always refused, as no binary data follows)."""
    schema = inline_schema(InferRequest)
    tensor = schema["properties"]["inputs"]["items"]
    tensor["required"] = [*tensor["required"], "data"]
    data = tensor["properties"]["data"]
    del data["anyOf"], data["default"]
    data["type"] = "array"
    tensor["properties"]["parameters"]["properties"]["binary_data_size"] = {
        "type": "null",
        "description": "Only with the binary tensor extension (see the body's description)",
    }
    return schema


# The binary tensor extension is described in words only: its body is valid only with the
# header, whose one valid value is the byte length of the JSON that starts the body, and neither
# OpenAPI nor JSON Schema can say that (a declared header, or an octet-stream body, only invites
# generated values that are wrong). The server reads the body as JSON whatever its Content-Type.
INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSON, with any or no Content-Type; each input's `data` holds as many "
        "texts as its shape says. Binary tensor extension: with the header "
        f"{HEADER_LENGTH}, the byte length of a JSON header (this InferRequest, with "
        "`parameters.binary_data_size`, the byte count, instead of `data` for a binary input) "
        "that starts the body, the bytes after it are those inputs' data, back to back, each "
        "text a 4-byte little-endian length and its UTF-8 bytes (any Content-Type, e.g. "
        "application/octet-stream)",
        "content": {"application/json": {"schema": _json_body_schema()}},
    },
}

# The 200's header when an output is sent as binary data.
INFER_RESPONSE_HEADERS: dict[str, Any] = {
    HEADER_LENGTH: {
        "description": "Binary tensor extension: the byte length of the JSON header that starts "
        "the body; the bytes after it are the binary outputs",
        "schema": {"type": "integer", "minimum": 0},
    }
}
