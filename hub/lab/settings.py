"""The lab's settings (``JIANHU_LAB__*``)."""

from typing import Any

from pydantic import BaseModel, Field

NAME = "lab"  # its settings group, JIANHU_LAB__*


class LabSettings(BaseModel):
    """The lab turnaround screen (S8)."""

    # the wall display on the lab's trusted network shows the screen, its snapshot and its
    # live stream without a token; acknowledgements always need one
    open_screen: bool = False
    # how far back a restart looks for tubes in flight, taken-in-charge alerts and open
    # critical values (the longest TAT rule, with margin)
    rebuild_hours: float = Field(48.0, gt=0, le=24 * 31)


def lab_settings(settings: Any) -> LabSettings:
    """The lab's group of the hub's settings (``Settings.section``)."""
    found: LabSettings = settings.section(NAME)
    return found
