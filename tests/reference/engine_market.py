"""The market and models the engine tests share: a fixed demo venue at 2026-11-21 08:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from riskgate.demo import demo_market
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params

VT = datetime(2026, 11, 21, 8, tzinfo=UTC)
DM = demo_market(VT, strikes_per_expiry=7)
SNAP = DM.snapshot
MODEL_NAMES = ("deribit", "span")
MODELS = {name: load_model(name) for name in MODEL_NAMES}
RULES = load_rules_params()
