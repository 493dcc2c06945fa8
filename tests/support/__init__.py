"""Shared test helpers (domain object builders)."""
