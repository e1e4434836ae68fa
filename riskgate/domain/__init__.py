"""Domain model: instruments, symbols, market snapshots, portfolios and margin pools."""
