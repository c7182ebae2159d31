"""Shared fixtures. Service fixtures live in tests/fixtures/ and are loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.platform",
]
