"""``google.rpc.Status``, the message gRPC failures carry their details in (Fabric's gateway puts one
``gateway.ErrorDetail`` per peer there)."""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailing metadata key under which a gRPC failure carries its serialized ``google.rpc.Status``."""


def _rpc_status_class() -> type:
    """``google.rpc.Status`` (code, message, details); defined here when its Python module is not installed."""
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
    except KeyError:
        pass
    status_file = descriptor_pb2.FileDescriptorProto(
        name="swarmfuse/rpc_status.proto", package="google.rpc", syntax="proto3", dependency=[any_pb2.DESCRIPTOR.name]
    )
    message = status_file.message_type.add(name="Status")
    field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    message.field.add(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="details", number=3, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED, type_name=".google.protobuf.Any"
    )
    return message_factory.GetMessageClass(pool.Add(status_file).message_types_by_name["Status"])


RpcStatus = _rpc_status_class()
