"""The market and models the engine tests share: a fixed demo venue at 2026-11-21 08:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from riskgate.demo import demo_market
from riskgate.engine.engine import EngineConfig, RiskEngine
from riskgate.models import load_model
from riskgate.models.rules import load_rules_params

VT = datetime(2026, 11, 21, 8, tzinfo=UTC)
DM = demo_market(VT, strikes_per_expiry=7)
SNAP = DM.snapshot
MODEL_NAMES = ("deribit", "span")
MODELS = {name: load_model(name) for name in MODEL_NAMES}
# tims with the illustrative stress cells: the engine tests that take a model by name can
# also run on a model with stress scenarios (a snapshot records its identity)
STRESS_FILE = Path(__file__).resolve().parents[2] / "examples" / "stress" / "illustrative.toml"
MODELS["tims+stress"] = load_model("tims", stress_path=STRESS_FILE)
RULES = load_rules_params()


def make_engine(
    model: str = "deribit", clock=None, budget_ns: int = 10**10, sink=None, **config
) -> RiskEngine:
    """A warmed engine on the shared market; the default budget never rejects on latency.
    ``sink`` receives every committed event (the shared market's first)."""
    config.setdefault("decision_budget_ns", budget_ns)
    kwargs = {} if clock is None else {"clock_ns": clock, "wall_ns": clock}
    eng = RiskEngine(MODELS[model], RULES, EngineConfig(**config), sink=sink, **kwargs)
    eng.warm_up()
    eng.load_snapshot(SNAP)
    return eng


class MemorySink:
    """Keeps committed events in memory, as the journal would write them."""

    def __init__(self) -> None:
        self.events: list = []

    def write(self, events) -> None:
        self.events.extend(events)

    def wait_durable(self, seq: int) -> None:
        assert self.events and self.events[-1].seq >= seq, "waited for an unwritten event"
