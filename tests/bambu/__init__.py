"""Tests for the Bambu Lab client library."""
