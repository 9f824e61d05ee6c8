"""Provider credentials are encrypted at rest with Fernet keyed from HERALD_SECRET_KEY.

MultiFernet lets an operator rotate: put the new secret first in HERALD_SECRET_KEY and the old
ones after it, comma-separated; old ciphertexts still decrypt and new ones use the first key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialCipher:
    def __init__(self, secret_key: str):
        secrets = [s for s in (part.strip() for part in secret_key.split(",")) if s]
        self._fernet = MultiFernet([Fernet(_derive(s)) for s in secrets])

    def encrypt(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            # Never echo the ciphertext: it is still a secret's wrapper.
            raise ValueError("stored credentials cannot be decrypted with HERALD_SECRET_KEY") from None


def _derive(secret: str) -> bytes:
    digest = hashlib.sha256(b"herald-credentials-v1:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)
