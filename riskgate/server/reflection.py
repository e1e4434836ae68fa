"""Server reflection under both of its names: ``grpc.reflection.v1alpha.ServerReflection``
and ``grpc.reflection.v1.ServerReflection``, which current clients (grpcurl, Postman) ask
for first.

grpcio-reflection ships only the v1alpha service. The v1 protocol is the same one under a
new package — the same messages, field for field and number for number — so the same
servicer answers both: the v1 method is registered with a generic handler that reads and
writes v1alpha messages (identical bytes on the wire). So that describing the v1 service
works too, its file descriptor (the v1alpha file renamed into the v1 package) is added to
the default descriptor pool unless something else has added one already.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

__all__ = ["SERVICE_NAME_V1", "SERVICE_NAME_V1ALPHA", "add_reflection"]

SERVICE_NAME_V1ALPHA: str = reflection.SERVICE_NAME
SERVICE_NAME_V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(fdp)
    old, new = reflection_pb2.DESCRIPTOR.package, "grpc.reflection.v1"
    fdp.name, fdp.package = _V1_FILE, new
    fdp.options.Clear()  # the v1alpha file's language options name v1alpha packages
    for message in fdp.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{old}."):
                field.type_name = f".{new}." + field.type_name[len(old) + 2 :]
    for service in fdp.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{old}.", f".{new}.")
            method.output_type = method.output_type.replace(f".{old}.", f".{new}.")
    pool.AddSerializedFile(fdp.SerializeToString())


def add_reflection(server: grpc.Server, servicer: reflection.ReflectionServicer) -> None:
    """Serve ``servicer`` (whose service names should include both of these) under both
    reflection service names."""
    _register_v1_descriptor()
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.method_handlers_generic_handler(
        SERVICE_NAME_V1,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
