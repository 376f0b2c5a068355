"""Pictures the farm serves: print-job covers (PNG) and camera frames (JPEG).

Everything is drawn with Pillow at run time; nothing is shipped or fetched.
Drawing is blocking (a few milliseconds): the farm runs it in an executor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from functools import cache

from PIL import Image, ImageDraw, ImageFont

type Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

FRAME_SIZE = (640, 360)
COVER_SIZE = (512, 512)


@cache
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _colour(seed: str) -> tuple[int, int, int]:
    """A stable, fairly saturated colour derived from ``seed``."""
    digest = hashlib.sha256(seed.encode()).digest()
    return 64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160


def cover_png(title: str, printer: str) -> bytes:
    """A job cover: a coloured "model" on a build plate, with the job title."""
    width = COVER_SIZE[0]
    image = Image.new("RGB", COVER_SIZE, (236, 238, 241))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 330, width - 40, 470), fill=(60, 63, 70))
    colour = _colour(title)
    draw.polygon(
        [(160, 360), (256, 140), (352, 360)],
        fill=colour,
        outline=(30, 30, 30),
        width=3,
    )
    draw.ellipse((206, 300, 306, 400), fill=colour, outline=(30, 30, 30), width=3)
    draw.text((width // 2, 50), title, fill=(20, 20, 20), font=_font(32), anchor="mm")
    draw.text((width // 2, 95), printer, fill=(90, 90, 90), font=_font(20), anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def camera_jpeg(
    printer: str,
    job: str,
    progress: int,
    state: str,
    now: dt.datetime | None = None,
) -> bytes:
    """A camera frame: printer name, job, state, a progress bar and the time."""
    width, height = FRAME_SIZE
    now = now or dt.datetime.now().astimezone()
    image = Image.new("RGB", FRAME_SIZE, (18, 20, 26))
    draw = ImageDraw.Draw(image)
    # A build plate and a "part" that grows with the progress.
    draw.rectangle((120, 280, width - 120, 320), fill=(70, 74, 82))
    grown = int(150 * max(0, min(100, progress)) / 100)
    if grown:
        draw.rectangle(
            (width // 2 - 60, 280 - grown, width // 2 + 60, 280), fill=_colour(job)
        )
    draw.text((20, 16), printer, fill=(240, 240, 240), font=_font(28))
    draw.text((20, 54), job or "idle", fill=(180, 200, 255), font=_font(20))
    draw.text((20, 82), f"{state}  {progress}%", fill=(200, 200, 200), font=_font(20))
    draw.rectangle((20, 112, 220, 126), outline=(200, 200, 200))
    draw.rectangle((20, 112, 20 + 2 * max(0, min(100, progress)), 126), fill="green")
    draw.text(
        (width - 20, height - 16),
        now.strftime("%Y-%m-%d %H:%M:%S"),
        fill=(160, 160, 160),
        font=_font(16),
        anchor="rs",
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()
