"""Tests of the bootstrap and lint scripts."""
