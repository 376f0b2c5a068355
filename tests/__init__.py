"""Tests of the Bambu Lab Cloud integration."""
