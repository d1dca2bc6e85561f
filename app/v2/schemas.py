"""Bodies of the Open Inference Protocol (KServe v2 / Triton) REST API, for parsing and docs."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.oip.contract import INPUT, OUTPUTS
from app.v2.codec import HEADER_LENGTH


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_size: int | None = Field(
        None, ge=0, description="Binary tensor extension: the input's data follows the JSON header"
    )


_TEXT: dict[str, JsonValue] = {"type": "string", "pattern": "\\S"}
# A row of shape [N, 1] sent nested.
_ROW: dict[str, JsonValue] = {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": 1}


# Constraints that only the docs carry (json_schema_extra) are checked by app/v2/tensors.py, which
# says more than pydantic would about what is wrong.
class RequestInput(BaseModel):
    name: str = Field(json_schema_extra={"enum": [INPUT]})
    datatype: str = Field(json_schema_extra={"enum": ["BYTES"]})
    shape: list[Annotated[int, Field(ge=0)]] = Field(
        description="[N] or [N, 1]: N texts", json_schema_extra={"minItems": 1, "maxItems": 2}
    )
    parameters: InputParameters = InputParameters()
    data: list[Any] | None = Field(
        None,
        description="The texts, row-major, flat or nested; none empty",
        json_schema_extra={"items": {"anyOf": [_TEXT, _ROW]}, "minItems": 1},
    )


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data: bool | None = Field(
        None, description="Send this output as binary data; default: `binary_data_output`"
    )
    classification: int = Field(
        0,
        description="Triton's classification extension: not supported",
        json_schema_extra={"minimum": 0, "maximum": 0},
    )


class RequestOutput(BaseModel):
    name: str = Field(json_schema_extra={"enum": list(OUTPUTS)})
    parameters: OutputParameters = OutputParameters()


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_output: bool = Field(
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

INFER_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": HEADER_LENGTH,
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "Binary tensor extension: length of the JSON header; the bytes after "
            "it are the inputs' binary data",
        }
    ],
    "requestBody": {
        "required": True,
        "description": "JSON (any or no Content-Type), or a JSON header followed by binary "
        f"tensor data when {HEADER_LENGTH} is sent",
        "content": {
            "application/json": {"schema": inline_schema(InferRequest)},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
