import numpy as np
from PIL import Image

from pipeline import preview


def test_preview_writes_a_contact_sheet(tmp_path):
    out = preview.main(["--variant", "cifar", "--photo", "chelsea", "--out", str(tmp_path / "sheet.png")])
    sheet = Image.open(out)
    cell = 128 + preview.GAP  # 32 px images are enlarged four times
    assert sheet.format == "PNG"
    assert sheet.size == (preview.LABEL_WIDTH + 6 * cell, preview.HEADER + 19 * cell)
    pixels = np.asarray(sheet.convert("RGB"))
    first = pixels[preview.HEADER:preview.HEADER + 128, preview.LABEL_WIDTH:preview.LABEL_WIDTH + 128]
    assert first.std() > 10  # a photo, not a blank cell
    assert not list(tmp_path.glob(".*.part"))


def test_preview_rejects_an_unknown_photo(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="astronaut, chelsea, coffee, rocket"):
        preview.main(["--photo", "lena", "--out", str(tmp_path / "x.png")])
