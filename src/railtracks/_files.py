"""File and directory permissions for what railtracks writes (state, log file, outbox).

Saved states and log files hold a run's inputs, outputs and context (secrets
redacted, but still the application's data): railtracks creates them readable
by their owner only, and the directories it creates likewise. An existing
directory keeps its own permissions; a file railtracks replaces gets these.
"""

from __future__ import annotations

from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
