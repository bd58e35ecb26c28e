"""A fake authenticator app: produces each TOTP code once, in time order."""

from __future__ import annotations

import time
from dataclasses import dataclass

from server.security import mfa


@dataclass
class TotpDevice:
    """Hands out codes for successive time steps inside the server's ±1 step window."""

    secret: str
    last_step: int = 0

    def next_code(self) -> str:
        """A code the server has not seen yet and still accepts."""
        step = max(self.last_step + 1, mfa.step_of(time.time()) - 1)
        self.last_step = step
        return mfa.code_at(self.secret, step)
