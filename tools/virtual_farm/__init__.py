"""A virtual Bambu Lab printer farm: HTTPS cloud, cloud MQTT broker, printers.

``python -m tools.virtual_farm --printers 4`` runs it; tests use
``async with VirtualFarm(printers=4, speed=20) as farm:``.
"""

from .farm import (
    DEMO_ACCOUNT,
    DEMO_CODE,
    DEMO_PASSWORD,
    DEMO_TFA_ACCOUNT,
    DEMO_TFA_CODE,
    DEMO_TOKEN,
    DEMO_UID,
    FarmPrinter,
    VirtualFarm,
)
from .notify import Announcement, NotifySender, notify_datagram

__all__ = [
    "DEMO_ACCOUNT",
    "DEMO_CODE",
    "DEMO_PASSWORD",
    "DEMO_TFA_ACCOUNT",
    "DEMO_TFA_CODE",
    "DEMO_TOKEN",
    "DEMO_UID",
    "Announcement",
    "FarmPrinter",
    "NotifySender",
    "VirtualFarm",
    "notify_datagram",
]
