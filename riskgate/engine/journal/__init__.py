"""The event journal, snapshots and recovery."""
