"""Secrets (the API key, the callback-token secret), read through Powertools and cached."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities import parameters

SECRET_CACHE_SECONDS = 300


def secret_reader(secret_id: str, provider: parameters.SecretsProvider | None = None) -> Callable[[], str]:
    """A function returning the secret's current value, fetched at most every few minutes."""
    source = provider or parameters.SecretsProvider()

    def read() -> str:
        value = source.get(secret_id, max_age=SECRET_CACHE_SECONDS)
        if not isinstance(value, str) or not value:
            raise RuntimeError(f"secret {secret_id} is empty or not a string")
        return value.strip()

    return read
