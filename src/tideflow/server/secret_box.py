"""Encryption of secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``).

The key comes from ``TIDEFLOW_SECRETS_KEY`` (one Fernet key, or several separated by commas: the
first encrypts, all decrypt, which is how a key is rotated), or else from ``$TIDEFLOW_HOME/secrets.key``,
created on first use with mode 0600. Servers sharing one PostgreSQL database (replicas) must share the
key: set ``TIDEFLOW_SECRETS_KEY`` on each. Nothing here logs a value or a key.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from tideflow.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = ["KEY_FILE", "SecretBox", "SecretKeyError", "key_file_path"]

KEY_FILE = "secrets.key"

logger = logging.getLogger("tideflow.server")


class SecretKeyError(Exception):
    """The secrets key is unusable, or a stored secret does not decrypt with it (message: why)."""


def key_file_path(settings: Settings) -> Path:
    return settings.home / KEY_FILE


def _read_or_create(path: Path) -> bytes:
    """The key in ``path``, creating the file (mode 0600, exclusively: two servers starting together
    on one home agree on one key) when it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode)
        key = path.read_bytes().strip()
        if not key:  # another server is writing it right now
            raise SecretKeyError(f"the secrets key file {path} is empty") from None
        return key
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    logger.info("created the secrets key file %s (mode 600)", path)
    return key


class SecretBox:
    """Encrypts and decrypts secret values with the server's key(s)."""

    def __init__(self, keys: list[bytes], source: str) -> None:
        # Imported on first use (~30 ms): a server that never touches a secret does not pay it.
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet: MultiFernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"{source} is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                'make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())")'
            ) from None
        self.source = source

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for TIDEFLOW_SECRETS_KEY, else for the key file in TIDEFLOW_HOME (made if new)."""
        if settings.secrets_key:
            keys = [k.strip().encode() for k in settings.secrets_key.split(",") if k.strip()]
            return cls(keys, "TIDEFLOW_SECRETS_KEY")
        path = key_file_path(settings)
        try:
            key = _read_or_create(path)
        except OSError as exc:
            raise SecretKeyError(
                f"cannot read or create the secrets key file {path}: {exc.strerror}"
            ) from None
        return cls([key], f"the key file {path}")

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, name: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"secret {name!r} does not decrypt with {self.source}: it was stored with another "
                "key (replicas must share TIDEFLOW_SECRETS_KEY)"
            ) from None
