"""``riskgate controls ACCOUNT`` and ``riskgate group set|join|show``: the pre-trade controls
of a running service (velocity, credit, loss and per-class limits; account groups)."""

from __future__ import annotations

import argparse
from typing import Any

_LIMIT_FLAGS = (
    # flag, ControlLimits field, type, help
    ("--max-orders", "max_orders", int, "orders accepted per --orders-window-ms"),
    ("--orders-window-ms", "orders_window_ms", int, "the order-rate window (default 1000)"),
    ("--max-notional", "max_notional_usd", float, "USD accepted per --notional-window-ms"),
    ("--notional-window-ms", "notional_window_ms", int, "the notional window (default 60000)"),
    ("--max-gross", "max_gross_notional_usd", float, "gross notional of positions + orders, USD"),
    ("--max-net", "max_net_notional_usd", float, "net notional (long - short), USD"),
    ("--warn-at", "credit_warning_fraction", float, "alert at this fraction of a credit limit"),
    ("--max-daily-loss", "max_daily_loss_usd", float, "loss since the day's start that trips"),
)


def _add_limit_flags(p: argparse.ArgumentParser, classes: bool) -> None:
    for flag, _, kind, help_text in _LIMIT_FLAGS:
        p.add_argument(flag, type=kind, metavar="N", help=help_text)
    p.add_argument(
        "--on-loss", choices=("reducing", "halted"), default="reducing",
        help="the state a tripped loss limit sets (default reducing)",
    )  # fmt: skip
    if classes:
        p.add_argument(
            "--class-max-qty", action="append", default=[], metavar="CLASS=QTY",
            help="max order quantity per class (option, future, spot); repeatable",
        )  # fmt: skip
        p.add_argument(
            "--class-band", action="append", default=[], metavar="CLASS=FRACTION",
            help="price band per class: an option's as a fraction of its underlying, the "
            "others' of their mark; repeatable",
        )  # fmt: skip


def _limits(args: argparse.Namespace) -> Any:
    from riskgate.v1 import riskgate_pb2 as pb

    m = pb.ControlLimits()
    for _, field, _, _ in _LIMIT_FLAGS:
        v = getattr(args, field, None)
        if v is not None:
            setattr(m, field, v)
    m.loss_action = (
        pb.TRADING_STATE_HALTED if args.on_loss == "halted" else pb.TRADING_STATE_REDUCING
    )
    for what, target in (
        ("class_max_qty", m.class_max_quantity),
        ("class_band", m.class_price_band),
    ):
        for item in getattr(args, what, []):
            cls, _, value = item.partition("=")
            try:
                target[cls] = float(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r}: expected CLASS=NUMBER") from None
    return m


def render_controls(c: Any) -> list[str]:
    """The controls section of ``riskgate account``."""
    from riskgate.domain.units import plain

    lines = ["", "controls"]
    lines.append(
        f"  groups {' > '.join(c.groups) or '-'}  day's P&L {plain(c.day_pnl_usd)} USD"
        + ("  LOSS LIMIT TRIPPED" if c.loss_limit_tripped else "")
    )
    for u in c.usage:
        share = f"{u.used / u.limit_value:.0%}" if u.limit_value else "-"
        lines.append(
            f"  {u.scope:<12} {u.limit:<16} {plain(u.used):>14} of {plain(u.limit_value):>14}"
            f" {u.unit:<10} {share:>5}"
        )
    return lines


def _client(args: argparse.Namespace) -> Any:
    from riskgate.cli import _credentials
    from riskgate.client import RiskGateClient

    return RiskGateClient(
        args.target, admin_timeout_s=args.timeout, credentials=_credentials(args), token=args.token
    )


def _cmd_controls(args: argparse.Namespace) -> int:
    from riskgate.cli import _render_account, _rpc, _to_json
    from riskgate.v1 import riskgate_pb2 as pb

    with _client(args) as c:
        view = _rpc(args.target, lambda: c.get_account(args.account))
        lim = pb.Limits()
        lim.CopyFrom(view.limits)  # the static limits stay as they are
        lim.controls.CopyFrom(_limits(args))
        if args.clear:
            lim.ClearField("controls")
        req = pb.UpsertAccountRequest(account_id=args.account, limits=lim)
        _rpc(
            args.target,
            lambda: c.stub.UpsertAccount(req, timeout=args.timeout, metadata=c.metadata),
        )
        view = _rpc(args.target, lambda: c.get_account(args.account))
    print(_to_json(view) if args.json else _render_account(view))
    return 0


def _render_group(g: Any) -> str:
    from riskgate.domain.units import plain

    lines = [
        f"group {g.group_id}  parent {g.parent_id or '-'}  day's P&L {plain(g.day_pnl_usd)} USD"
        + ("  LOSS LIMIT TRIPPED" if g.loss_limit_tripped else ""),
        f"  accounts {', '.join(g.accounts) or '-'}",
        f"  groups inside {', '.join(g.child_groups) or '-'}",
    ]
    for u in g.usage:
        lines.append(f"  {u.limit:<16} {plain(u.used):>14} of {plain(u.limit_value):>14} {u.unit}")
    return "\n".join(lines)


def _cmd_group(args: argparse.Namespace) -> int:
    from riskgate.cli import _rpc, _to_json
    from riskgate.v1 import riskgate_pb2 as pb

    with _client(args) as c:
        md, t = c.metadata, args.timeout
        if args.group_command == "set":
            req = pb.UpsertGroupRequest(group_id=args.group, limits=_limits(args))
            if args.parent is not None:
                req.parent_id = args.parent
            out = _rpc(args.target, lambda: c.stub.UpsertGroup(req, timeout=t, metadata=md))
        elif args.group_command == "join":
            jr = pb.SetAccountGroupRequest(account_id=args.account, group_id=args.group)
            _rpc(args.target, lambda: c.stub.SetAccountGroup(jr, timeout=t, metadata=md))
            out = None
        else:
            gr = pb.GetGroupRequest(group_id=args.group)
            out = _rpc(args.target, lambda: c.stub.GetGroup(gr, timeout=t, metadata=md))
    if out is None:
        print(f"account {args.account}: group {args.group or '-'}")
    else:
        print(_to_json(out) if args.json else _render_group(out))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from riskgate.cli import _TARGET_HELP, DEFAULT_TARGET, _add_tls_client_args

    p.add_argument("--target", default=DEFAULT_TARGET, metavar="ADDR", help=_TARGET_HELP)
    _add_tls_client_args(p)
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds")
    p.add_argument("--json", action="store_true", help="the reply message as JSON")


def add_parser(sub: Any) -> None:
    controls = sub.add_parser(
        "controls",
        help="set an account's pre-trade controls (velocity, credit, loss, class limits)",
        description="Replace an account's control limits (UpsertAccount with its current "
        "static limits and these controls) and print the account with its usage against "
        "each limit. Rejects: VELOCITY_LIMIT, CREDIT_LIMIT, LOSS_LIMIT, GROUP_LIMIT, "
        "MESSAGE_THROTTLE; class limits reject as MAX_ORDER_QUANTITY and PRICE_BAND.",
    )
    controls.add_argument("account", metavar="ACCOUNT")
    _add_limit_flags(controls, classes=True)
    controls.add_argument("--clear", action="store_true", help="remove every control limit")
    _common(controls)
    controls.set_defaults(func=_cmd_controls)

    group = sub.add_parser(
        "group",
        help="account groups: set a group's limits, put an account in one, show usage",
        description="A group (a firm or desk) has limits over the sum of its accounts; "
        "groups nest, and an order must pass every enclosing group's limits.",
    )
    gsub = group.add_subparsers(dest="group_command", required=True)
    gset = gsub.add_parser("set", help="create a group or replace its limits (UpsertGroup)")
    gset.add_argument("group", metavar="GROUP")
    gset.add_argument("--parent", metavar="GROUP", help='the enclosing group ("" = top level)')
    _add_limit_flags(gset, classes=False)
    _common(gset)
    join = gsub.add_parser("join", help="put an account in a group (SetAccountGroup)")
    join.add_argument("account", metavar="ACCOUNT")
    join.add_argument("group", metavar="GROUP", help='the group ("" = out of any group)')
    _common(join)
    show = gsub.add_parser("show", help="a group's members and usage (GetGroup)")
    show.add_argument("group", metavar="GROUP")
    _common(show)
    for p in (gset, join, show):
        p.set_defaults(func=_cmd_group)
