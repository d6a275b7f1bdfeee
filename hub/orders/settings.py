"""Orders out (``JIANHU_ORDERS__*``): which system performs which kind of order, and in what
message. A ServiceRequest's kind is read from its category (SNOMED CT 108252007 laboratory
procedure, 363679005 imaging; or the v2 diagnostic service section of table 0074)."""

from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["laboratory", "imaging"]


class Performer(BaseModel, frozen=True):
    receiver: str  # MSH-5: the application that performs it (what a destination filters on)
    message: Literal["ORM^O01", "OML^O21", "OMI^O23"] = "ORM^O01"


class OrdersSettings(BaseModel):
    facility: str = "JHYY"  # MSH-4 and MSH-6
    performers: dict[Kind, Performer] = Field(default_factory=lambda: dict(_PERFORMERS))


_PERFORMERS: dict[Kind, Performer] = {
    "laboratory": Performer(receiver="LIS"),
    "imaging": Performer(receiver="PACS"),
}
