"""Shared test fixtures live in tests/fixtures.py-style modules; this file keeps pytest's rootdir imports simple."""
