"""The service's .proto against the published one: every RPC, message, field, number and type the
server declares is the one tritonclient (built from Triton's published grpc_service.proto and
model_config.proto) sends and reads; and the committed message modules are what protoc makes.

The .proto is compiled to a descriptor set here rather than imported: the generated modules would
share protobuf's one descriptor pool with tritonclient's, which define the same symbols.
"""

import filecmp
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2

from tests.support.artifacts import ROOT

PROTOS = ["app/grpc/proto/model_config.proto", "app/grpc/proto/grpc_service.proto"]


def compiled(tmp_path: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    out = tmp_path / "set.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--descriptor_set_out={out}",
         *PROTOS],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return {f.name: f for f in files}


def messages_of(
    protos: Iterable[descriptor_pb2.FileDescriptorProto],
) -> dict[str, descriptor_pb2.DescriptorProto]:
    """Every message of the files by full name, nested ones (map entries too) included."""
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}

    def add(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        messages[f"{prefix}.{message.name}"] = message
        for nested in message.nested_type:
            add(f"{prefix}.{message.name}", nested)

    for proto in protos:
        for message in proto.message_type:
            add(f".{proto.package}", message)
    return messages


def published() -> list[descriptor_pb2.FileDescriptorProto]:
    protos = []
    for module in (service_pb2, model_config_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        protos.append(proto)
    return protos


def field_shape(field: descriptor_pb2.FieldDescriptorProto) -> tuple[object, ...]:
    oneof = field.oneof_index if field.HasField("oneof_index") else None
    return (field.name, field.number, field.type, field.type_name, field.label, oneof)


def test_every_message_and_field_is_the_published_one(tmp_path: Path) -> None:
    theirs = messages_of(published())
    mine = messages_of(compiled(tmp_path).values())
    assert len(mine) >= 30  # the service's messages, their nested ones and map entries
    for name, message in mine.items():
        assert name in theirs, f"{name} is not a published message"
        published_fields = {f.number: field_shape(f) for f in theirs[name].field}
        for field in message.field:
            assert published_fields.get(field.number) == field_shape(field), (name, field.name)


def test_every_rpc_is_the_published_one(tmp_path: Path) -> None:
    (service,) = compiled(tmp_path)["app/grpc/proto/grpc_service.proto"].service
    published_service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.name == published_service.name
    assert service_pb2.DESCRIPTOR.package == "inference"
    for method in service.method:
        theirs = published_service.methods_by_name[method.name]
        assert method.input_type == f".{theirs.input_type.full_name}"
        assert method.output_type == f".{theirs.output_type.full_name}"
        assert not method.server_streaming and not method.client_streaming
    served = {method.name for method in service.method}
    assert {"ModelInfer", "ModelConfig", "RepositoryModelLoad", "ServerReady"} <= served


@pytest.mark.parametrize("name", ["grpc_service_pb2.py", "grpc_service_pb2.pyi",
                                  "model_config_pb2.py", "model_config_pb2.pyi"])  # fmt: skip
def test_the_committed_modules_are_what_protoc_makes(tmp_path: Path, name: str) -> None:
    subprocess.run(["bash", "scripts/grpc_stubs.sh", str(tmp_path)], cwd=ROOT, check=True)
    made = tmp_path / "app" / "grpc" / "proto" / name
    assert filecmp.cmp(made, ROOT / "app" / "grpc" / "proto" / name, shallow=False)
