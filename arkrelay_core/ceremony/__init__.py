"""The ceremony engine's pieces: intent intake and the fee policy (sessions come next)."""

from .fees import FeeSchedule, check_fee, required_fee
from .intake import AcceptedIntent, check_intent

__all__ = ["AcceptedIntent", "FeeSchedule", "check_fee", "check_intent", "required_fee"]
