"""Deribit symbol grammar (docs/architecture.md §2): every form, expiry at 08:00 UTC, time to expiry in
years of 365 days, settlement currency, and bad symbols with a message that says what is
wrong.

Expected values are written out by hand from the grammar, never read back from the parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from riskgate.domain.instruments import (
    Instrument,
    InstrumentError,
    Kind,
    Settlement,
    parse_symbol,
)

EXP_27DEC26 = datetime(2026, 12, 27, 8, 0, tzinfo=UTC)

# symbol -> (kind, underlying, settlement, expiry, strike_usd, settle currency)
GOOD = {
    "BTC-PERPETUAL": (Kind.PERPETUAL, "BTC", Settlement.INVERSE, None, 0.0, "BTC"),
    "BTC-27DEC26": (Kind.FUTURE, "BTC", Settlement.INVERSE, EXP_27DEC26, 0.0, "BTC"),
    "BTC-27DEC26-70000-C": (Kind.CALL, "BTC", Settlement.INVERSE, EXP_27DEC26, 70000.0, "BTC"),
    "ETH-27DEC26-3500-P": (Kind.PUT, "ETH", Settlement.INVERSE, EXP_27DEC26, 3500.0, "ETH"),
    "BTC_USDC-PERPETUAL": (Kind.PERPETUAL, "BTC", Settlement.LINEAR, None, 0.0, "USD"),
    "BTC_USDC-27DEC26": (Kind.FUTURE, "BTC", Settlement.LINEAR, EXP_27DEC26, 0.0, "USD"),
    "BTC_USDC-27DEC26-70000-P": (Kind.PUT, "BTC", Settlement.LINEAR, EXP_27DEC26, 70000.0, "USD"),
    "BTC_USDC": (Kind.SPOT, "BTC", Settlement.LINEAR, None, 0.0, "USD"),
    "BTC_USDT": (Kind.SPOT, "BTC", Settlement.LINEAR, None, 0.0, "USD"),
    "ETH_USDT-PERPETUAL": (Kind.PERPETUAL, "ETH", Settlement.LINEAR, None, 0.0, "USD"),
    # Deribit writes a decimal point in a strike as 'd': 0d625 = 0.625
    "XRP_USDC-27DEC26-0d625-C": (Kind.CALL, "XRP", Settlement.LINEAR, EXP_27DEC26, 0.625, "USD"),
    # single-digit day
    "BTC-7MAR27": (
        Kind.FUTURE,
        "BTC",
        Settlement.INVERSE,
        datetime(2027, 3, 7, 8, tzinfo=UTC),
        0.0,
        "BTC",
    ),
}


@pytest.mark.parametrize("symbol", sorted(GOOD))
def test_symbol_forms(symbol: str) -> None:
    kind, coin, settlement, expiry, strike, settle_ccy = GOOD[symbol]
    inst = parse_symbol(symbol)
    assert inst.kind == kind
    assert inst.underlying == coin
    assert inst.settlement == settlement
    assert inst.expiry == expiry
    assert inst.strike_usd == strike
    assert inst.settle_currency == settle_ccy
    assert inst.multiplier == 1.0
    assert inst.is_option == (kind in (Kind.CALL, Kind.PUT))
    assert inst.is_inverse == (settlement == Settlement.INVERSE)


def test_symbol_is_normalised_to_upper_case() -> None:
    inst = parse_symbol("btc_usdc-27dec26-70000-c")
    assert inst.symbol == "BTC_USDC-27DEC26-70000-C"
    assert inst.kind == Kind.CALL and inst.settlement == Settlement.LINEAR


def test_expiry_is_0800_utc() -> None:
    exp = parse_symbol("ETH-29FEB28-3000-C").expiry  # 2028 is a leap year
    assert exp == datetime(2028, 2, 29, 8, 0, 0, tzinfo=UTC)
    assert exp.utcoffset() == timedelta(0)
    assert (exp.hour, exp.minute, exp.second) == (8, 0, 0)


def test_tte_years_is_seconds_over_365_days() -> None:
    inst = parse_symbol("BTC-27DEC26-70000-C")
    # exactly one day before expiry: 86,400 s / 31,536,000 s = 1/365
    one_day = datetime(2026, 12, 26, 8, tzinfo=UTC)
    assert inst.tte_years(one_day) == pytest.approx(1.0 / 365.0, rel=1e-15)
    # 2026-11-21 08:00 -> 2026-12-27 08:00 is 36 days
    assert inst.tte_years(datetime(2026, 11, 21, 8, tzinfo=UTC)) == pytest.approx(
        36.0 / 365.0, rel=1e-15
    )
    # 90 minutes before expiry: 5,400 s / 31,536,000 s
    assert inst.tte_years(datetime(2026, 12, 27, 6, 30, tzinfo=UTC)) == pytest.approx(
        5400.0 / 31_536_000.0, rel=1e-15
    )
    # a valuation time in another zone is the same instant: 10:00+02:00 = 08:00Z, T = 0
    cest = datetime(2026, 12, 27, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert inst.tte_years(cest) == 0.0
    # past expiry: negative
    assert inst.tte_years(datetime(2026, 12, 28, 8, tzinfo=UTC)) == pytest.approx(-1.0 / 365.0)
    # no expiry: 0
    assert parse_symbol("BTC-PERPETUAL").tte_years(one_day) == 0.0
    assert parse_symbol("BTC_USDC").tte_years(one_day) == 0.0


def test_leap_year_counts_366_calendar_days_as_366_over_365() -> None:
    inst = parse_symbol("BTC-1MAR28")
    t = inst.tte_years(datetime(2027, 3, 1, 8, tzinfo=UTC))
    assert t == pytest.approx(366.0 / 365.0, rel=1e-15)


# symbol -> fragments the error message must contain (what is wrong, and where)
BAD = {
    # unknown grammar
    "BTC": ["BTC", "unknown"],
    "BTC-27DEC26-70000": ["BTC-27DEC26-70000", "unknown"],
    "BTC-27DEC26-70000-C-X": ["BTC-27DEC26-70000-C-X", "unknown"],
    "BTC_EUR": ["BTC_EUR", "EUR"],
    "B-PERPETUAL": ["'B'"],
    "": ["empty"],
    # bad month / impossible date
    "BTC-27DEX26": ["27DEX26", "expiry"],
    "BTC-30FEB27-70000-C": ["30FEB27", "expiry"],
    "BTC-29FEB27": ["29FEB27", "expiry"],  # 2027 is not a leap year
    "BTC-0DEC26": ["0DEC26", "expiry"],
    "BTC-2026DEC27": ["2026DEC27", "expiry"],
    # strike
    "BTC-27DEC26-0-C": ["BTC-27DEC26-0-C", "strike"],
    "BTC-27DEC26-0d0-P": ["BTC-27DEC26-0d0-P", "strike"],
    "BTC-27DEC26-abc-C": ["BTC-27DEC26-abc-C", "strike"],
    "BTC-27DEC26-nan-C": ["BTC-27DEC26-nan-C", "strike"],
    # option letter
    "BTC-27DEC26-70000-X": ["BTC-27DEC26-70000-X", "C or P"],
    "BTC-27DEC26-70000-CALL": ["BTC-27DEC26-70000-CALL", "C or P"],
}


@pytest.mark.parametrize("symbol", sorted(BAD))
def test_bad_symbols_raise_with_useful_message(symbol: str) -> None:
    with pytest.raises(InstrumentError) as info:
        parse_symbol(symbol)
    message = str(info.value)
    for fragment in BAD[symbol]:
        assert fragment.lower() in message.lower(), (fragment, message)
    assert "\n" not in message


def test_infinite_strike_is_rejected() -> None:
    with pytest.raises(InstrumentError):
        parse_symbol("BTC-27DEC26-inf-C")


def test_instrument_error_is_a_value_error() -> None:
    # callers that catch ValueError (argument parsing, servicers) also catch it
    assert issubclass(InstrumentError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": Kind.FUTURE, "expiry": None}, "expiry"),
        ({"kind": Kind.CALL, "expiry": EXP_27DEC26, "strike_usd": 0.0}, "strike"),
        ({"kind": Kind.PUT, "expiry": EXP_27DEC26, "strike_usd": -5.0}, "strike"),
        ({"kind": Kind.PERPETUAL, "multiplier": 0.0}, "multiplier"),
        ({"kind": Kind.SPOT, "settlement": Settlement.INVERSE}, "spot"),
    ],
)
def test_explicit_instrument_validation(kwargs: dict, fragment: str) -> None:
    args = {"symbol": "X", "underlying": "BTC", "settlement": Settlement.LINEAR, **kwargs}
    with pytest.raises(InstrumentError, match=fragment):
        Instrument(**args)
