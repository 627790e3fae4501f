"""JSON Web Tokens as qontract-api issues them: HS256, claims `sub` and `exp`, a shared secret,
and a list of revoked subjects. Accepted next to this service's own tokens so its consumers
switch by changing one URL (`[api.jwt]` in jobs.toml).

PyJWT does the verification (signature, algorithm pinned to HS256, expiry, required claims);
this module maps its outcomes to principals and to 401 messages that never echo the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jwt

from snapshots.config_types import Secret
from snapshots.errors import Unauthorized

ALGORITHM = "HS256"
_UNPRINTABLE = re.compile(r"[^A-Za-z0-9_.@+-]")


@dataclass(frozen=True)
class JwtVerifier:
    """Verifies bearer JWTs; a valid one is a principal named `jwt:<sub>` with `role`."""

    secret: Secret
    role: str
    revoked_subjects: frozenset[str]

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Three base64url segments: what a JWT is and one of our `snp_` tokens is not."""
        return token.count(".") == 2

    def subject(self, token: str) -> str:
        """The token's subject when the token is valid and not revoked, else 401 saying why."""
        try:
            claims = jwt.decode(
                token,
                self.secret.reveal(),
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the JWT has expired; ask for a new one") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the JWT is not valid ({type(exc).__name__})") from None
        subject = str(claims["sub"])
        if not subject.strip():
            raise Unauthorized("the JWT's subject is empty; it must name the caller")
        if subject in self.revoked_subjects:
            raise Unauthorized("the JWT's subject has been revoked")
        return subject

    @staticmethod
    def principal_name(subject: str) -> str:
        """How logs show a JWT caller: its subject, limited to plain characters."""
        return "jwt:" + _UNPRINTABLE.sub("_", subject)[:64]
