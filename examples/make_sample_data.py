"""Generate the quickstart sample in examples/data/: a small fictional "ACME Solar" report.

    python examples/make_sample_data.py [--out examples/data]

Everything is drawn with the libraries mmrag already depends on (PyMuPDF, Pillow, PyAV), so the
sample is reproducible offline and small (well under 1.5 MB in total):

- ``acme_solar_annual_report_2024.pdf``: five pages with a text layer: a cover, the year in
  review, a bar chart of quarterly revenue (vector shapes with axis labels), a table of
  installations by region, and the outlook. Page labels: ``Cover``, then 1, 2, ….
- ``system_diagram.png``: how an ACME home system fits together (panels, inverter, battery, grid).
- ``rooftop_installation.jpg``: a photo-like rooftop with a panel array, stored sideways with an
  EXIF orientation tag (as phones do), so it only looks right when the orientation is applied.
- ``customer_survey_slide.png``: a slide screenshot with the customer-satisfaction figures.
- ``acme_update_video.mp4``: an 8-second update in four scenes, one headline each.

The facts agree across files, so questions such as "How much did revenue grow in 2024?" (12 %)
or "Which region installed the most systems?" (the Southwest, 1,240) can be answered and cited
from the page, the image or the video second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFont

from mmrag.testing.media import make_video

HERE = Path(__file__).resolve().parent

NAVY = (0.09, 0.17, 0.33)
ORANGE = (0.95, 0.55, 0.10)
GREY = (0.35, 0.35, 0.35)

QUARTERS = [("Q1", 10.1), ("Q2", 11.6), ("Q3", 13.4), ("Q4", 13.1)]  # $ million, total 48.2
REGIONS = [
    ("Southwest", 1240, 8.7, "+18%"),
    ("Southeast", 820, 5.6, "+9%"),
    ("Midwest", 610, 4.1, "+14%"),
    ("Northeast", 480, 3.2, "+6%"),
]  # 3,150 homes, 21.6 MW

PARAGRAPHS = {
    "review": [
        "ACME Solar designs, installs and maintains rooftop solar systems with battery storage "
        "for households and small businesses. 2024 was our strongest year so far.",
        "Revenue grew 12% to $48.2 million, up from $43.0 million in 2023. Growth came from "
        "larger systems and from battery storage, which was added to 38% of new installations "
        "(2023: 27%).",
        "We installed systems on 3,150 homes, with a combined capacity of 21.6 megawatts. "
        "Battery storage shipments rose 40% to 1,197 units. The gross margin improved from "
        "24.5% to 26.1% as panel prices fell and installation crews became more productive.",
        "Customer satisfaction reached 94% in our annual survey, and the average time from "
        "signed contract to switched-on system fell from 41 to 33 days.",
    ],
    "outlook": [
        "For 2025 we target 5,000 installed homes and revenue of $60 million. We will open two "
        "new regional warehouses, in Phoenix and Atlanta, to shorten delivery times.",
        "The main risks are changes to net-metering tariffs, supply-chain delays for inverters, "
        "and rising interest rates, which make financed systems more expensive for customers.",
        "Our maintenance contracts now cover 7,800 systems and provide recurring revenue of "
        "$3.9 million per year; we expect this to pass $5 million in 2025.",
    ],
}


# -- the PDF ---------------------------------------------------------------------------------------


def _header(page: pymupdf.Page, title: str) -> None:
    page.draw_rect(pymupdf.Rect(0, 0, page.rect.width, 56), color=None, fill=NAVY)
    page.insert_text((48, 36), title, fontname="hebo", fontsize=18, color=(1, 1, 1))
    page.insert_text(
        (48, page.rect.height - 28),
        "ACME Solar - Annual Report 2024",
        fontname="helv",
        fontsize=8,
        color=GREY,
    )


def _paragraphs(page: pymupdf.Page, top: float, texts: list[str]) -> float:
    y = top
    for text in texts:
        box = pymupdf.Rect(48, y, page.rect.width - 48, y + 120)
        left = page.insert_textbox(box, text, fontname="helv", fontsize=11, lineheight=1.35)
        y = box.y1 - left + 12
    return y


def _cover(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=612, height=792)
    page.draw_rect(page.rect, color=None, fill=NAVY)
    page.draw_circle((470, 170), 70, color=None, fill=ORANGE)  # the sun
    for k in range(4):  # a stylised panel array
        x = 80 + k * 115
        page.draw_rect(
            pymupdf.Rect(x, 520, x + 100, 600), color=(1, 1, 1), fill=(0.2, 0.3, 0.5), width=1.5
        )
    page.insert_text((80, 330), "ACME Solar", fontname="hebo", fontsize=44, color=(1, 1, 1))
    page.insert_text((80, 380), "Annual Report 2024", fontname="helv", fontsize=26, color=(1, 1, 1))
    page.insert_text(
        (80, 420),
        "Revenue up 12% to $48.2 million - 3,150 homes powered",
        fontname="helv",
        fontsize=13,
        color=ORANGE,
    )


def _review(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=612, height=792)
    _header(page, "2024 in review")
    y = _paragraphs(page, 84, PARAGRAPHS["review"])
    facts = [
        ("Revenue", "$48.2M (+12%)"),
        ("Homes installed", "3,150"),
        ("Capacity installed", "21.6 MW"),
        ("Battery units", "1,197 (+40%)"),
        ("Gross margin", "26.1%"),
        ("Customer satisfaction", "94%"),
    ]
    page.insert_text((48, y + 24), "Key figures", fontname="hebo", fontsize=13, color=NAVY)
    for row, (label, value) in enumerate(facts):
        top = y + 36 + row * 22
        page.insert_text((60, top + 14), label, fontname="helv", fontsize=11)
        page.insert_text((300, top + 14), value, fontname="hebo", fontsize=11)


def _chart(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=612, height=792)
    _header(page, "Revenue by quarter")
    page.insert_textbox(
        pymupdf.Rect(48, 80, 564, 140),
        "Quarterly revenue rose through the year and peaked in the third quarter, when the new "
        "battery bundle launched. Figure 1 shows revenue per quarter in millions of US dollars.",
        fontname="helv",
        fontsize=11,
        lineheight=1.35,
    )
    left, bottom, top, right = 110.0, 560.0, 200.0, 540.0
    scale = (bottom - top) / 15.0  # the axis runs from $0M to $15M
    for tick in range(0, 16, 5):  # gridlines and y-axis labels
        y = bottom - tick * scale
        page.draw_line((left, y), (right, y), color=(0.85, 0.85, 0.85), width=0.6)
        page.insert_text((left - 34, y + 4), f"${tick}M", fontname="helv", fontsize=9)
    page.draw_line((left, bottom), (right, bottom), color=(0, 0, 0), width=1)
    page.draw_line((left, bottom), (left, top - 10), color=(0, 0, 0), width=1)
    width = 60.0
    for index, (quarter, value) in enumerate(QUARTERS):
        x = left + 30 + index * 100
        bar = pymupdf.Rect(x, bottom - value * scale, x + width, bottom)
        page.draw_rect(bar, color=None, fill=ORANGE if quarter == "Q3" else NAVY)
        page.insert_text((x + 12, bar.y0 - 6), f"{value:.1f}", fontname="hebo", fontsize=10)
        page.insert_text((x + 20, bottom + 16), quarter, fontname="helv", fontsize=10)
    page.insert_text((left + 150, bottom + 40), "Quarter (2024)", fontname="helv", fontsize=10)
    page.insert_text((left - 60, top - 20), "Revenue (US$ million)", fontname="helv", fontsize=10)
    page.insert_text(
        (48, bottom + 80),
        "Figure 1: ACME Solar quarterly revenue, 2024. Full-year revenue: $48.2 million.",
        fontname="heit",
        fontsize=10,
    )


def _table(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=612, height=792)
    _header(page, "Installations by region")
    page.insert_textbox(
        pymupdf.Rect(48, 80, 564, 140),
        "The Southwest remained our largest region with 1,240 homes and the fastest growth. "
        "Table 1 lists the homes installed, the capacity installed and the growth in homes "
        "compared with 2023.",
        fontname="helv",
        fontsize=11,
        lineheight=1.35,
    )
    columns = [
        ("Region", 48),
        ("Homes installed", 200),
        ("Capacity (MW)", 340),
        ("Growth vs 2023", 460),
    ]
    top, row_height = 170.0, 28.0
    page.draw_rect(pymupdf.Rect(48, top, 564, top + row_height), color=None, fill=NAVY)
    for title, x in columns:
        page.insert_text((x + 8, top + 18), title, fontname="hebo", fontsize=11, color=(1, 1, 1))
    rows = [*REGIONS, ("Total", 3150, 21.6, "+13%")]
    for index, (region, homes, capacity, growth) in enumerate(rows, 1):
        y = top + index * row_height
        if index % 2 == 0:
            page.draw_rect(
                pymupdf.Rect(48, y, 564, y + row_height), color=None, fill=(0.93, 0.95, 0.98)
            )
        font = "hebo" if region == "Total" else "helv"
        for (_, x), cell in zip(
            columns, (region, f"{homes:,}", f"{capacity:.1f}", growth), strict=True
        ):
            page.insert_text((x + 8, y + 18), cell, fontname=font, fontsize=11)
        page.draw_line(
            (48, y + row_height), (564, y + row_height), color=(0.7, 0.7, 0.7), width=0.5
        )
    page.draw_rect(
        pymupdf.Rect(48, top, 564, top + row_height * (len(rows) + 1)),
        color=(0.4, 0.4, 0.4),
        width=0.8,
    )
    page.insert_text(
        (48, top + row_height * (len(rows) + 1) + 24),
        "Table 1: homes and capacity installed in 2024, by region.",
        fontname="heit",
        fontsize=10,
    )


def _outlook(doc: pymupdf.Document) -> None:
    page = doc.new_page(width=612, height=792)
    _header(page, "Outlook for 2025")
    _paragraphs(page, 84, PARAGRAPHS["outlook"])


def make_report(path: Path) -> Path:
    doc = pymupdf.open()
    for build in (_cover, _review, _chart, _table, _outlook):
        build(doc)
    doc.set_page_labels(
        [
            {"startpage": 0, "prefix": "Cover", "style": "", "firstpagenum": 1},
            {"startpage": 1, "prefix": "", "style": "D", "firstpagenum": 1},
        ]
    )
    doc.set_metadata(
        {
            "title": "ACME Solar Annual Report 2024",
            "author": "ACME Solar (fictional sample data)",
            "subject": "Sample document for the mmrag quickstart",
            "creator": "examples/make_sample_data.py",
            "producer": "PyMuPDF",
            "creationDate": "D:20250101000000Z",
            "modDate": "D:20250101000000Z",
        }
    )
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
    doc.close()
    return path


# -- the images ----------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def make_diagram(path: Path) -> Path:
    image = Image.new("RGB", (720, 300), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title = "How an ACME home system works"
    draw.text((24, 16), title, fill=(23, 43, 84), font=_font(24))
    boxes = [
        ("Solar panels", "6-12 kW"),
        ("Inverter", "DC to AC"),
        ("Battery", "13.5 kWh"),
        ("Home + grid", "net metering"),
    ]
    for index, (label, detail) in enumerate(boxes):
        x = 24 + index * 178
        draw.rounded_rectangle((x, 110, x + 140, 210), radius=12, fill=(23, 43, 84))
        draw.text((x + 70, 145), label, fill=(255, 255, 255), font=_font(17), anchor="mm")
        draw.text((x + 70, 178), detail, fill=(242, 140, 26), font=_font(15), anchor="mm")
        if index < len(boxes) - 1:
            draw.line((x + 144, 160, x + 174, 160), fill=(90, 90, 90), width=4)
            draw.polygon([(x + 174, 152), (x + 174, 168), (x + 178, 160)], fill=(90, 90, 90))
    draw.text(
        (24, 250),
        "Excess daytime energy charges the battery first, then flows to the grid.",
        fill=(60, 60, 60),
        font=_font(16),
    )
    image = image.quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    return path


def make_rooftop_photo(path: Path) -> Path:
    """A photo-like rooftop, stored rotated with EXIF orientation 6 (as a phone would)."""
    width, height = 640, 480
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # sky gradient
        t = y / height
        draw.line((0, y, width, y), fill=(int(90 + 120 * t), int(150 + 80 * t), 235))
    draw.ellipse((500, 40, 580, 120), fill=(255, 214, 90))  # the sun
    draw.polygon([(40, 470), (320, 230), (600, 470)], fill=(120, 60, 45))  # the roof
    for row in range(3):  # panels on the roof
        for col in range(5 - row):
            x0 = 150 + row * 45 + col * 72
            y0 = 400 - row * 52
            draw.rectangle((x0, y0, x0 + 64, y0 + 44), fill=(30, 45, 90), outline=(200, 200, 210))
    draw.text((20, 20), "ACME install #3150 - Tucson, AZ", fill=(255, 255, 255), font=_font(20))
    stored = image.transpose(Image.Transpose.ROTATE_90)  # sideways on disk …
    exif = Image.Exif()
    exif[0x0112] = 6  # … and upright once the orientation is applied
    stored.save(path, quality=80, exif=exif.tobytes(), optimize=True)
    return path


def make_survey_slide(path: Path) -> Path:
    image = Image.new("RGB", (800, 450), (246, 247, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 800, 70), fill=(23, 43, 84))
    draw.text((30, 20), "Customer survey 2024", fill=(255, 255, 255), font=_font(30))
    results = [("Very satisfied", 71), ("Satisfied", 23), ("Neutral", 4), ("Unsatisfied", 2)]
    for index, (label, share) in enumerate(results):
        y = 110 + index * 62
        draw.text((30, y + 8), label, fill=(30, 30, 30), font=_font(22))
        draw.rectangle((250, y, 250 + share * 6, y + 40), fill=(242, 140, 26))
        draw.text((260 + share * 6, y + 8), f"{share}%", fill=(30, 30, 30), font=_font(22))
    draw.text(
        (30, 370),
        "Customer satisfaction: 94% (very satisfied + satisfied)",
        fill=(23, 43, 84),
        font=_font(24),
    )
    draw.text((30, 408), "1,870 responses, December 2024", fill=(90, 90, 90), font=_font(18))
    image = image.quantize(colors=32, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)
    return path


# -- the video -----------------------------------------------------------------------------------

SCENES = [
    "Scene 1: revenue grew 12%\nto $48.2 million",
    "Scene 2: 3,150 homes\ninstalled in 2024",
    "Scene 3: battery storage\nshipments up 40%",
    "Scene 4: 2025 target:\n5,000 homes",
]


def make_update_video(path: Path) -> Path:
    return make_video(path, seconds=8.0, fps=8, size=(480, 270), scenes=SCENES, gop_size=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "data", help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    made = [
        make_report(args.out / "acme_solar_annual_report_2024.pdf"),
        make_diagram(args.out / "system_diagram.png"),
        make_rooftop_photo(args.out / "rooftop_installation.jpg"),
        make_survey_slide(args.out / "customer_survey_slide.png"),
        make_update_video(args.out / "acme_update_video.mp4"),
    ]
    total = 0
    for path in made:
        size = path.stat().st_size
        total += size
        print(f"{path}  {size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
