"""Bambu Lab client library (no Home Assistant imports)."""
