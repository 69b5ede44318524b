"""A throwaway RSA service-account key for tests, generated once per process."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def service_account(token_uri: str, *, project: str = "test-project", email: str = "relay@test-project.iam.gserviceaccount.com") -> dict[str, Any]:
    """The JSON Google's console downloads for a service-account key, pointed at `token_uri`."""
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef",
        "private_key": private_key_pem(),
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/relay",
        "universe_domain": "googleapis.com",
    }


def service_account_json(token_uri: str, **kwargs: Any) -> str:
    return json.dumps(service_account(token_uri, **kwargs), indent=2)
