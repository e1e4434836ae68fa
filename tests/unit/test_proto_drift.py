"""The checked-in generated code matches protos/, and the API keeps its stable shape.

The drift check regenerates into a temporary directory with ``scripts/gen_protos.py`` and
compares with the checked-in files: byte for byte when the installed grpcio-tools is the one
recorded in ``riskgate/v1/GENERATED_WITH`` (another version may write different bytes for the
same .proto), otherwise by the descriptor protoc builds from the .proto versus the one
embedded in ``riskgate_pb2.py``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = REPO_ROOT / "protos" / "riskgate" / "v1" / "riskgate.proto"
GENERATED = (
    *sorted(p.name for p in (REPO_ROOT / "riskgate" / "v1").iterdir() if "_pb2" in p.name),
    "GENERATED_WITH",
)


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "riskgate_gen_protos", REPO_ROOT / "scripts" / "gen_protos.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


gen = _load_script()
SAME_TOOLS = gen.read_stamp(REPO_ROOT / "riskgate" / "v1" / "GENERATED_WITH") == gen.tools_version()


def _copy_checked_in(dest_root: Path) -> Path:
    """A copy of the checked-in generated files laid out like the repository."""
    dest = dest_root / "riskgate" / "v1"
    dest.mkdir(parents=True)
    for name in GENERATED:
        shutil.copyfile(REPO_ROOT / "riskgate" / "v1" / name, dest / name)
    return dest


def _copy_protos(dest_root: Path) -> Path:
    protos = dest_root / "protos"
    shutil.copytree(REPO_ROOT / "protos", protos)
    return protos


# ---- drift -------------------------------------------------------------------------------


def test_checked_in_code_matches_protos() -> None:
    report = gen.find_drift(REPO_ROOT)
    assert report.ok, f"generated code drifted ({report.mode}; {report.note}):\n" + "\n".join(
        report.problems
    )
    assert report.mode == ("bytes" if SAME_TOOLS else "descriptor")


def test_descriptor_check_passes_on_checked_in_code() -> None:
    # The fallback used with another grpcio-tools version; exercised here whatever the version.
    assert gen.descriptor_drift(REPO_ROOT) == []


def test_generation_is_reproducible(tmp_path: Path) -> None:
    first = gen.generate(tmp_path / "a")
    second = gen.generate(tmp_path / "b")
    assert first == second
    for rel in first:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_generated_paths_are_package_paths(tmp_path: Path) -> None:
    written = gen.generate(tmp_path)
    assert "riskgate/v1/riskgate_pb2.py" in written
    assert "riskgate/v1/riskgate_pb2.pyi" in written
    assert "riskgate/v1/riskgate_pb2_grpc.py" in written
    grpc_source = (tmp_path / "riskgate/v1/riskgate_pb2_grpc.py").read_text()
    assert "from riskgate.v1 import riskgate_pb2" in grpc_source


def test_changed_proto_is_reported_naming_the_generated_file(tmp_path: Path) -> None:
    protos = _copy_protos(tmp_path)
    proto = protos / "riskgate" / "v1" / "riskgate.proto"
    text = proto.read_text()
    anchor = "  uint64 market_version = 19;\n"  # inside Decision, whatever follows it
    assert anchor in text
    proto.write_text(text.replace(anchor, anchor + "  string drift_probe = 99;\n", 1))

    report = gen.find_drift(REPO_ROOT, protos)
    assert not report.ok
    assert any(p.startswith("riskgate/v1/riskgate_pb2.py:") for p in report.problems)

    descriptor_problems = gen.descriptor_drift(REPO_ROOT, protos)
    assert len(descriptor_problems) == 1
    assert descriptor_problems[0].startswith("riskgate/v1/riskgate_pb2.py:")
    assert "drift_probe" in descriptor_problems[0]


@pytest.mark.skipif(not SAME_TOOLS, reason="byte comparison needs the recorded grpcio-tools")
def test_edited_generated_file_is_reported_by_name(tmp_path: Path) -> None:
    copy = _copy_checked_in(tmp_path)
    target = copy / "riskgate_pb2_grpc.py"
    target.write_bytes(target.read_bytes() + b"# hand edit\n")

    report = gen.find_drift(tmp_path)
    assert report.mode == "bytes"
    assert [p.split(":")[0] for p in report.problems] == ["riskgate/v1/riskgate_pb2_grpc.py"]


def test_missing_and_stale_files_are_reported(tmp_path: Path) -> None:
    copy = _copy_checked_in(tmp_path)
    (copy / "riskgate_pb2.pyi").unlink()
    (copy / "old_pb2.py").write_text("# left over from a deleted .proto\n")

    problems = gen.find_drift(tmp_path).problems
    assert any(p.startswith("riskgate/v1/riskgate_pb2.pyi: missing") for p in problems)
    assert any(p.startswith("riskgate/v1/old_pb2.py: stale") for p in problems)


def test_other_tools_version_falls_back_to_descriptor(tmp_path: Path) -> None:
    copy = _copy_checked_in(tmp_path)
    (copy / "GENERATED_WITH").write_text("grpcio-tools==0.0.1\n")
    target = copy / "riskgate_pb2_grpc.py"
    target.write_bytes(target.read_bytes() + b"# what another grpcio-tools might write\n")

    report = gen.find_drift(tmp_path)
    assert report.mode == "descriptor"
    assert "0.0.1" in report.note
    assert report.ok, report.problems


def test_check_command_exit_codes(tmp_path: Path) -> None:
    script = str(REPO_ROOT / "scripts" / "gen_protos.py")
    ok = subprocess.run(
        [sys.executable, script, "--check"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr

    copy = _copy_checked_in(tmp_path)
    pb2 = copy / "riskgate_pb2.py"
    pb2.write_bytes(pb2.read_bytes().replace(b"RiskGate", b"RiskGatf"))
    bad = subprocess.run(
        [sys.executable, script, "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "riskgate/v1/riskgate_pb2.py" in bad.stderr
    assert b"RiskGatf" in pb2.read_bytes()  # --check never writes


# ---- the API's stable shape --------------------------------------------------------------

RPCS = {
    # name: (request, response, server streaming)
    "CheckOrder": ("CheckOrderRequest", "Decision", False),
    "CheckOrders": ("CheckOrdersRequest", "CheckOrdersResponse", False),
    "WhatIf": ("CheckOrderRequest", "Decision", False),
    "MaxQuantity": ("MaxQuantityRequest", "MaxQuantityResponse", False),
    "ReportOrderEvent": ("OrderEvent", "OrderEventAck", False),
    "UpsertAccount": ("UpsertAccountRequest", "UpsertAccountResponse", False),
    "SetPositions": ("SetPositionsRequest", "SetPositionsResponse", False),
    "SetTradingState": ("SetTradingStateRequest", "SetTradingStateResponse", False),
    "UpdateMarket": ("UpdateMarketRequest", "UpdateMarketResponse", False),
    "GetAccount": ("GetAccountRequest", "AccountView", False),
    "ListInstruments": ("ListInstrumentsRequest", "ListInstrumentsResponse", False),
    "StreamMarginStatus": ("StreamMarginStatusRequest", "MarginStatusEvent", True),
    # pre-trade controls: account groups
    "UpsertGroup": ("UpsertGroupRequest", "GroupView", False),
    "SetAccountGroup": ("SetAccountGroupRequest", "SetAccountGroupResponse", False),
    "GetGroup": ("GetGroupRequest", "GroupView", False),
}

# Numbers are part of the API: a renumbering must fail here.
REJECT_REASONS = {
    "REJECT_REASON_UNSPECIFIED": 0,
    "REJECT_REASON_INVALID_ORDER": 1,
    "REJECT_REASON_UNKNOWN_ACCOUNT": 2,
    "REJECT_REASON_UNKNOWN_INSTRUMENT": 3,
    "REJECT_REASON_INSTRUMENT_EXPIRED": 4,
    "REJECT_REASON_DUPLICATE_ORDER_ID_MISMATCH": 5,
    "REJECT_REASON_ACCOUNT_HALTED": 6,
    "REJECT_REASON_ACCOUNT_REDUCING_ONLY": 7,
    "REJECT_REASON_MAX_ORDER_QUANTITY": 8,
    "REJECT_REASON_MAX_ORDER_NOTIONAL": 9,
    "REJECT_REASON_PRICE_BAND": 10,
    "REJECT_REASON_MAX_OPEN_ORDERS": 11,
    "REJECT_REASON_POSITION_LIMIT": 12,
    "REJECT_REASON_INSUFFICIENT_MARGIN": 13,
    "REJECT_REASON_LATENCY_BUDGET_EXCEEDED": 14,
    "REJECT_REASON_MARKET_DATA_MISSING": 15,
    "REJECT_REASON_INTERNAL_ERROR": 16,
    "REJECT_REASON_REDUCE_ONLY_VIOLATION": 17,
    "REJECT_REASON_VELOCITY_LIMIT": 19,
    "REJECT_REASON_CREDIT_LIMIT": 20,
    "REJECT_REASON_LOSS_LIMIT": 21,
    "REJECT_REASON_GROUP_LIMIT": 22,
    "REJECT_REASON_MESSAGE_THROTTLE": 23,
}


def test_generated_modules_import_as_package() -> None:
    from riskgate.v1 import riskgate_pb2, riskgate_pb2_grpc

    assert riskgate_pb2.DESCRIPTOR.package == "riskgate.v1"
    assert riskgate_pb2.DESCRIPTOR.name == "riskgate/v1/riskgate.proto"
    # The grpc module imports the messages by package path, not as a sibling top-level module.
    assert riskgate_pb2_grpc.riskgate_dot_v1_dot_riskgate__pb2 is riskgate_pb2


def test_service_has_every_rpc() -> None:
    from riskgate.v1 import riskgate_pb2, riskgate_pb2_grpc

    service = riskgate_pb2.DESCRIPTOR.services_by_name["RiskGate"]
    assert service.full_name == "riskgate.v1.RiskGate"
    assert {m.name for m in service.methods} == set(RPCS)
    for name, (request, response, streaming) in RPCS.items():
        method = service.methods_by_name[name]
        assert method.input_type.name == request, name
        assert method.output_type.name == response, name
        assert method.server_streaming is streaming, name
        assert method.client_streaming is False, name
        assert callable(getattr(riskgate_pb2_grpc.RiskGateServicer, name)), name
    assert callable(riskgate_pb2_grpc.add_RiskGateServicer_to_server)
    assert callable(riskgate_pb2_grpc.RiskGateStub)


def test_reject_reason_numbers_are_stable() -> None:
    from riskgate.v1 import riskgate_pb2

    enum = riskgate_pb2.RejectReason
    for name, number in REJECT_REASONS.items():
        assert enum.Value(name) == number, name
    # New reasons may be added with new numbers; none may reuse or drop one.
    assert set(REJECT_REASONS) <= set(enum.keys())
    assert len(set(enum.values())) == len(enum.keys())
    # A few spelled out, so a renumbering fails even if the table above were edited with it.
    assert riskgate_pb2.REJECT_REASON_UNSPECIFIED == 0
    assert riskgate_pb2.REJECT_REASON_INVALID_ORDER == 1
    assert riskgate_pb2.REJECT_REASON_INSUFFICIENT_MARGIN == 13
    assert riskgate_pb2.REJECT_REASON_LATENCY_BUDGET_EXCEEDED == 14
    assert riskgate_pb2.REJECT_REASON_INTERNAL_ERROR == 16


def test_enums_have_unspecified_zero() -> None:
    from riskgate.v1 import riskgate_pb2

    for enum in riskgate_pb2.DESCRIPTOR.enum_types_by_name.values():
        zero = enum.values_by_number[0]
        assert zero.name.endswith("_UNSPECIFIED"), enum.name
    assert riskgate_pb2.SIDE_BUY == 1 and riskgate_pb2.SIDE_SELL == 2
    assert riskgate_pb2.TRADING_STATE_HALTED == 3
    assert riskgate_pb2.MARGIN_STATUS_LIQUIDATION == 3


def test_presence_where_zero_is_meaningful() -> None:
    from riskgate.v1 import riskgate_pb2

    order = riskgate_pb2.Order(symbol="BTC-PERPETUAL", quantity=1.0)
    assert not order.HasField("price")
    order.price = 0.0
    assert order.HasField("price")
    for message, fields in {
        "Order": ["price"],
        "Amended": ["new_quantity", "new_price"],
        "Position": ["avg_price"],
        "RejectContext": ["limit_value", "actual_value"],
        "UpdateMarketRequest": ["rate"],
        "Limits": [
            "max_order_quantity",
            "max_order_notional_usd",
            "price_band_fraction",
            "max_open_orders",
            "default_position_limit",
        ],
    }.items():
        descriptor = riskgate_pb2.DESCRIPTOR.message_types_by_name[message]
        for name in fields:
            assert descriptor.fields_by_name[name].has_presence, f"{message}.{name}"


def test_order_event_is_a_oneof() -> None:
    from riskgate.v1 import riskgate_pb2

    event = riskgate_pb2.OrderEvent(account_id="a", client_order_id="o")
    assert event.WhichOneof("event") is None
    event.filled.fill_quantity = 0.5
    event.filled.fill_price = 60000.0
    assert event.WhichOneof("event") == "filled"
    event.cancelled.SetInParent()
    assert event.WhichOneof("event") == "cancelled"
    assert {f.name for f in riskgate_pb2.OrderEvent.DESCRIPTOR.oneofs_by_name["event"].fields} == {
        "acknowledged",
        "venue_rejected",
        "cancelled",
        "expired",
        "amended",
        "filled",
    }
