"""Pre-trade controls beyond margin: velocity, credit, loss limits with an automatic kill
switch, account groups, per-class limits (see :mod:`riskgate.engine.controls.model`)."""
