"""EVERY8D HTTP API 2.1: client, typed results, phone and pricing rules, status codes, and a sandbox.

This package knows nothing of Slack; the bot, the console and the benchmarks all use it the same way.
"""
