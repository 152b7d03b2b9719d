"""Password hashing (argon2id via pwdlib) and access tokens (HS256 JWT via PyJWT)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.time import utcnow

_hasher = PasswordHash((Argon2Hasher(),))
# A fixed hash to verify against when the e-mail is unknown, so that a wrong e-mail and a wrong
# password take the same time and an attacker cannot probe which accounts exist.
_DUMMY_HASH = _hasher.hash("shanhai-dummy-password")

ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash is a failed login, not a crash
        return False


def create_access_token(user_id: uuid.UUID, secret: str, minutes: float) -> tuple[str, int]:
    """A signed token for `user_id` and its lifetime in seconds."""
    now = utcnow()
    expires_in = int(timedelta(minutes=minutes).total_seconds())
    payload = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + expires_in,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires_in


def decode_access_token(token: str, secret: str) -> uuid.UUID | None:
    """The user id in a valid, unexpired token; None for anything else."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        return uuid.UUID(str(payload["sub"]))
    except (jwt.PyJWTError, ValueError, KeyError):
        return None
