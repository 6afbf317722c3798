"""ML-Agents' gRPC service classes for ``UnityToExternalProto`` (one ``Exchange`` call).

Unity is the client: it calls ``Exchange`` with each of its messages and receives the
trainer's answer. Written by hand rather than generated so that it works with every grpcio
the package supports (generated service code demands the grpcio that generated it).
:mod:`mlagents_fast.envs.rpc_communicator` serves the same method on raw bytes.
"""

from __future__ import annotations

from typing import Any

import grpc

from mlagents_fast.envs.communicator_objects.unity_message_pb2 import UnityMessageProto

__all__ = [
    "UnityToExternalProtoServicer",
    "UnityToExternalProtoStub",
    "add_UnityToExternalProtoServicer_to_server",
]

SERVICE_NAME = "communicator_objects.UnityToExternalProto"


class UnityToExternalProtoStub:
    """Client side: ``stub.Exchange(UnityMessageProto) -> UnityMessageProto``."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.Exchange = channel.unary_unary(
            f"/{SERVICE_NAME}/Exchange",
            request_serializer=UnityMessageProto.SerializeToString,
            response_deserializer=UnityMessageProto.FromString,
        )


class UnityToExternalProtoServicer:
    """Server side: override ``Exchange``; the default answers UNIMPLEMENTED."""

    def Exchange(self, request: UnityMessageProto, context: grpc.ServicerContext) -> Any:
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")


def add_UnityToExternalProtoServicer_to_server(
    servicer: UnityToExternalProtoServicer, server: grpc.Server
) -> None:
    """Register ``servicer`` on ``server``."""
    handlers = {
        "Exchange": grpc.unary_unary_rpc_method_handler(
            servicer.Exchange,
            request_deserializer=UnityMessageProto.FromString,
            response_serializer=UnityMessageProto.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
