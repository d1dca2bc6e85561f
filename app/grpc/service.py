"""The RPCs of `inference.GRPCInferenceService`, on the same lifecycle, classify flow, limits and
metrics as REST.

Each method's handler is built from the generated service descriptor and takes the request's raw
bytes, so that a message that does not parse is an INVALID_ARGUMENT with the reason (grpcio's own
deserializer would answer INTERNAL). Errors are answered through the one table of
app/grpc/errors.py; anything else is logged with an error id and answered INTERNAL.
"""

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from app import __version__, metrics
from app.grpc.errors import BadRequest, Unauthenticated, status_of, trailing_metadata
from app.grpc.proto import grpc_service_pb2 as pb
from app.grpc.proto import model_config_pb2 as config_pb
from app.grpc.tensors import decode_infer, infer_response
from app.infer.classify import classify_request
from app.lifecycle.state import ServingState
from app.lifecycle.version import LoadedVersion
from app.oip.contract import SERVER_NAME, input_specs, output_specs
from app.repository.layout import LoadConfig, parse_load_config

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
# The protocol's datatypes as the model configuration names them.
CONFIG_TYPES = {"BYTES": config_pb.TYPE_STRING, "FP32": config_pb.TYPE_FP32}
# grpc.aio.ServicerContext; grpcio ships no type hints.
Context: TypeAlias = Any
Rpc = Callable[[Any, Context], Awaitable[Message]]


def credential(context: Context) -> bytes:
    """The key sent as `authorization: Bearer <key>`, else `x-api-key: <key>` (as REST)."""
    bearer = api_key = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and value[:7].lower() == "bearer ":
            bearer = value[7:]
        elif key == "x-api-key":
            api_key = value
    sent = bearer if bearer is not None else api_key or ""
    return sent.encode()


class InferenceService:
    """The service's RPCs; `keys` are API_KEY and ADMIN_API_KEY as bytes (None: not set)."""

    def __init__(self, state: ServingState, keys: dict[str, bytes | None]) -> None:
        self.state, self.keys = state, keys
        self.registry = state.registry
        self.calls_started = 0  # every call handed to a handler (the drain watches it)

    def _authorize(self, context: Context, setting: str) -> None:
        key = self.keys[setting]
        if key is not None and not hmac.compare_digest(credential(context), key):
            what = "API key" if setting == "API_KEY" else f"key ({setting})"
            raise Unauthenticated(
                f"missing or wrong {what} (send metadata 'authorization: Bearer <key>' or "
                "'x-api-key: <key>')"
            )

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> Message:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> Message:
        return pb.ServerReadyResponse(ready=self.state.readiness.ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> Message:
        # As Triton: a model it does not serve is not ready (no error).
        served = any(
            v.ref.name == request.name and request.version in ("", v.ref.version)
            for v in self.registry.all()
        )
        return pb.ModelReadyResponse(ready=served and self.state.readiness.ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> Message:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME,
            version=__version__,
            extensions=["model_configuration", "model_repository"],
        )

    def _named(self, name: str, version: str) -> LoadedVersion:
        return self.registry.resolve(name or None, version or None)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> Message:
        loaded = self._named(request.name, request.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=loaded.ref.name,
            versions=[v.ref.version for v in self.registry.versions(loaded.ref.name)],
            platform=loaded.engine.name,
            inputs=[tensor(name=s.name, datatype=s.datatype, shape=s.shape) for s in input_specs()],
            outputs=[
                tensor(name=s.name, datatype=s.datatype, shape=s.shape)
                for s in output_specs(len(loaded.artifacts.labels))
            ],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> Message:
        loaded = self._named(request.name, request.version)
        labels = loaded.artifacts.labels
        versions = [v.ref.version for v in self.registry.versions(loaded.ref.name)]
        config = config_pb.ModelConfig(
            name=loaded.ref.name,
            platform=loaded.engine.name,
            backend=SERVER_NAME,
            # 0: the shapes below carry the batch dimension themselves, as Triton reads them.
            max_batch_size=0,
            input=[
                config_pb.ModelInput(name=s.name, data_type=CONFIG_TYPES[s.datatype], dims=s.shape)
                for s in input_specs()
            ],
            output=[
                config_pb.ModelOutput(name=s.name, data_type=CONFIG_TYPES[s.datatype], dims=s.shape)
                for s in output_specs(len(labels))
            ],
            parameters={"labels": config_pb.ModelParameter(string_value=json.dumps(labels))},
        )
        if all(version.isdigit() for version in versions):
            config.version_policy.specific.versions.extend(int(v) for v in versions)
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> Message:
        self._authorize(context, "API_KEY")
        decoded = decode_infer(request)
        classified = await classify_request(
            self.registry,
            request.model_name or None,
            request.model_version or None,
            decoded.texts,
            context.cancelled,
            dict(context.invocation_metadata() or ()),
            "grpc",
        )
        return infer_response(
            classified.ref,
            request.id,
            decoded,
            classified.probabilities,
            classified.best_labels(),
        )

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> Message:
        self._authorize(context, "ADMIN_API_KEY")
        index = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[
                index(name=s.name, version=s.version or "", state=s.state, reason=s.reason)
                for s in self.state.control.index()
                if not request.ready or s.state == "READY"
            ]
        )

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> Message:
        """The versions the model's policy selects, or those of the `config` parameter (a
        version_policy, for rollback, as REST's); returns once they serve, or refused."""
        self._authorize(context, "ADMIN_API_KEY")
        if any(key.startswith("file:") for key in request.parameters):
            raise BadRequest(
                "model files are not taken through the API: add the version folder to "
                "MODEL_REPOSITORY"
            )
        asked = LoadConfig()
        if "config" in request.parameters:
            config = request.parameters["config"]
            if config.WhichOneof("parameter_choice") != "string_param":
                raise BadRequest("parameter 'config' must be a string (JSON)")
            asked = parse_load_config(config.string_param)
        await self.state.load_model(request.model_name, asked)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> Message:
        self._authorize(context, "ADMIN_API_KEY")
        await self.state.unload_model(request.model_name)
        return pb.RepositoryModelUnloadResponse()


def generic_handler(service: InferenceService) -> grpc.GenericRpcHandler:
    """The handlers of every RPC the descriptor declares, each taking raw bytes."""
    handlers = {}
    for method in SERVICE.methods:
        rpc: Rpc = getattr(service, method.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _answered(
                service,
                f"/{SERVICE.full_name}/{method.name}",
                rpc,
                GetMessageClass(method.input_type),
            ),
            response_serializer=lambda response: response.SerializeToString(),
        )
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)


def _answered(
    service: InferenceService, path: str, rpc: Rpc, request_class: type[Message]
) -> Callable[[bytes, Context], Awaitable[Message]]:
    async def call(raw: bytes, context: Context) -> Message:
        started = time.perf_counter()
        service.calls_started += 1
        code = grpc.StatusCode.OK
        metrics.in_flight("grpc").inc()
        try:
            try:
                request = request_class.FromString(raw)
            except DecodeError as exc:
                raise BadRequest(f"not a valid {request_class.__name__}: {exc}") from exc
            return await rpc(request, context)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED  # the client went away, or the drain timed out
            raise
        except Exception as exc:
            answer = status_of(exc)
            if answer is None:
                error_id = uuid.uuid4().hex[:16]
                log.exception("unhandled error %s in %s", error_id, path)
                answer = (
                    grpc.StatusCode.INTERNAL,
                    "internal",
                    f"internal error (error id {error_id})",
                )
            code, type_, message = answer
            metrics.errors(type_, "grpc").inc()
            await context.abort(code, message, trailing_metadata(exc))
            raise  # abort raised already; for the type checker
        finally:
            metrics.in_flight("grpc").dec()
            metrics.request_latency(path, code.name, "grpc").observe(time.perf_counter() - started)

    return call
