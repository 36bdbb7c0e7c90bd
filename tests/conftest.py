"""Fixtures for end-to-end tests: a Slack stand-in and the running product (see tests/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slackstandin import SlackStandIn
from tests.harness import Product, make_config


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def make_product(standin: SlackStandIn, tmp_path):
    """Build the product with configuration overrides: `make_product(allow_self_approval=True)`."""
    products: list[Product] = []

    def build(**overrides) -> Product:
        product = Product(make_config(standin, tmp_path / "bot.db", **overrides), standin)
        products.append(product)
        return product

    yield build
    for product in products:
        product.stop()


@pytest.fixture
def product(make_product) -> Product:
    return make_product()


@pytest.fixture
def bot_port() -> int:
    """A port for a bot run as a real process (tests/faults_support.py): kept across its restarts, so the
    sandbox's callback URL stays valid."""
    from tests.faults_support import restart_safe_port

    return restart_safe_port()
