"""``report.html`` in a real browser (headless Chromium): every plot decodes and shows, with no file beside it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from report_fixtures import write_report

_IMAGES = "[...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' ')"


def test_report_page_alone_renders_its_plots_and_tables(tmp_path: Path, chromium: Any) -> None:
    page = write_report(tmp_path / "demo", round_stories=["round 2 took 120 of 146 s: goal 10 not reached"])
    alone = tmp_path / "mailed" / "report.html"  # the page without its PNG files, as a recipient gets it
    alone.parent.mkdir()
    shutil.copyfile(page, alone)
    probe = alone.read_text().replace("</body>", f"<script>document.title = {_IMAGES};</script></body>")
    alone.write_text(probe)
    dom = chromium.dump_dom(alone.as_uri())
    sizes = dom.split("<title>", 1)[1].split("</title>", 1)[0].split()
    assert sizes == ["700x420", "700x360", "700x380"]  # decoded PNGs (figsize x 100 dpi), none broken (0x0)
    assert dom.count("<table>") == 3 and "round 2 took 120 of 146 s" in dom
    shot = chromium.screenshot(alone.as_uri(), tmp_path / "report.png")
    assert shot.stat().st_size > 20_000
