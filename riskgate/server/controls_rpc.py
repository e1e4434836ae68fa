"""The account-group RPCs of the pre-trade controls (mixed into the servicer): proto <->
engine, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from riskgate.engine.controls import codec as control_codec
from riskgate.v1 import riskgate_pb2 as pb

if TYPE_CHECKING:
    from riskgate.server.servicer import RiskGateServicer


class ControlsRpc:
    def UpsertGroup(
        self: RiskGateServicer, request: pb.UpsertGroupRequest, context: grpc.ServicerContext
    ) -> pb.GroupView:
        def run() -> Any:
            limits = (
                control_codec.limits_from_proto(request.limits)
                if request.HasField("limits")
                else None
            )
            parent = request.parent_id if request.HasField("parent_id") else None
            return self.engine.upsert_group(request.group_id, parent, limits)

        view = self._call(context, "UpsertGroup", run)
        self._rpc_log.info("group_upserted", group=request.group_id)
        return control_codec.group_view_to_proto(view)

    def SetAccountGroup(
        self: RiskGateServicer, request: pb.SetAccountGroupRequest, context: grpc.ServicerContext
    ) -> pb.SetAccountGroupResponse:
        view = self._call(
            context, "SetAccountGroup", self.engine.set_account_group, request.account_id,
            request.group_id,
        )  # fmt: skip
        self._rpc_log.info("account_group_set", account=request.account_id, group=request.group_id)
        return pb.SetAccountGroupResponse(controls=control_codec.controls_view_to_proto(view))

    def GetGroup(
        self: RiskGateServicer, request: pb.GetGroupRequest, context: grpc.ServicerContext
    ) -> pb.GroupView:
        view = self._call(context, "GetGroup", self.engine.group_view, request.group_id)
        return control_codec.group_view_to_proto(view)
