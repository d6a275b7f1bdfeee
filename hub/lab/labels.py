"""The pool tube's barcode label (混检管条码) as a one-page PDF: a Code 128 barcode, the barcode
in digits under it, the collection point, the time and the number of people. No names: the
label travels on a tube through many hands.

Drawn with ReportLab (``reportlab==5.1.0``, Code 128 built in, CJK text through the Adobe CID
font STSong-Light that needs no font file). It is imported lazily so the hub runs without it;
``render_label`` then raises ``LabelUnavailableError``.
"""

import io
from dataclasses import dataclass
from datetime import datetime

from hub.base.errors import ConfigurationError
from hub.lab.pool_tube import (
    Tube,
    instant,
)

try:
    from reportlab.graphics.barcode.code128 import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        Code128,
    )
    from reportlab.lib.units import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        mm,
    )
    from reportlab.pdfbase import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        pdfmetrics,
    )
    from reportlab.pdfbase.cidfonts import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        UnicodeCIDFont,
    )
    from reportlab.pdfgen.canvas import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        Canvas,
    )

    HAVE_REPORTLAB = True
except ImportError:  # the label is the only user; the rest of pooled testing works without it
    HAVE_REPORTLAB = False

CJK_FONT = "STSong-Light"
LABEL_MM = (50.0, 30.0)  # a common tube label roll


class LabelUnavailableError(ConfigurationError):
    """The PDF library is not installed."""


@dataclass(frozen=True)
class TubeLabel:
    barcode: str
    collection_point: str
    time: str  # YYYY-MM-DD HH:MM, Asia/Shanghai
    people: int


def label_for(tube: Tube, now: datetime) -> TubeLabel:
    """What the label says: the closing time of a closed tube, else the printing time; the
    people counted now (a label printed at opening says 0)."""
    moment = tube.closed_at or instant(now)
    return TubeLabel(
        barcode=tube.barcode,
        collection_point=tube.collection_point,
        time=f"{moment[:10]} {moment[11:16]}",
        people=len(tube.members),
    )


def render_label(label: TubeLabel) -> bytes:
    """The label as PDF bytes, uncompressed and reproducible (``invariant``): the same label
    gives the same bytes, and the barcode text can be found in them."""
    if not HAVE_REPORTLAB:
        raise LabelUnavailableError("printing tube labels needs reportlab (reportlab==5.1.0)")
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    width, height = LABEL_MM[0] * mm, LABEL_MM[1] * mm
    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=(width, height), pageCompression=0, invariant=1)
    pdf.setTitle(f"混检管 {label.barcode}")
    symbol = Code128(label.barcode, barWidth=0.28 * mm, barHeight=11 * mm, humanReadable=False)
    # scale down a long barcode rather than let it run off the label
    scale = min(1.0, (width - 4 * mm) / symbol.width)
    pdf.saveState()
    pdf.translate((width - symbol.width * scale) / 2, height - 14 * mm)
    pdf.scale(scale, 1)
    symbol.drawOn(pdf, 0, 0)
    pdf.restoreState()
    pdf.setFont("Helvetica", 8)
    pdf.drawCentredString(width / 2, height - 17.5 * mm, label.barcode)
    pdf.setFont(CJK_FONT, 6.5)
    pdf.drawString(2 * mm, 8 * mm, f"采样点: {label.collection_point[:24]}")
    pdf.drawString(2 * mm, 5 * mm, f"时间: {label.time}")
    pdf.drawString(2 * mm, 2 * mm, f"混检 {label.people} 人")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
