"""Thumbnails of an uploaded image dataset (a zip of class folders of PNGs, stored encrypted): the
version page shows them through the access-checked thumbnail route, and only for images its
preview names, only to members of the project."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import unquote

from PIL import Image

COLORS = {"猫/1.png": (200, 30, 30), "猫/2.png": (30, 200, 30), "<b>dog</b>/1.png": (30, 30, 200)}


def png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, format="PNG")
    return out.getvalue()


def test_an_uploaded_image_zip_shows_thumbnails_to_members_only(ui, world, signed_in, axe_check, shot):
    project = world["project"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, color in COLORS.items():
            zf.writestr(f"pets/{name}", png(color))
    v = ui.client(world["editor"]["token"]).upload_dataset(project, "pets", buf.getvalue(), filename="pets.zip")
    assert v["format"] == "images-zip" and v["encrypted"]  # so its preview is sealed too
    page = signed_in(world["viewer"]["token"])
    page.goto(f"/ui/p/{project}/datasets/pets/versions/{v['version']}")
    page.wait_for_function(
        "() => { const im = [...document.querySelectorAll('table.preview img')];"
        " return im.length === 3 && im.every(i => i.complete && i.naturalWidth === 40); }"
    )
    sources = page.locator("table.preview img").evaluate_all("im => im.map(i => i.getAttribute('src'))")
    base = f"/ui/p/{project}/datasets/pets/versions/{v['version']}/thumbnails/"
    assert all(s.startswith(base) for s in sources)
    assert sorted(unquote(s[len(base) :]) for s in sources) == sorted(COLORS)
    assert page.locator("table.preview b").count() == 0  # a folder named <b>dog</b> is text
    # The thumbnail is the image itself (its colour), read from the encrypted archive.
    first = page.request.get(sources[0])
    assert first.ok and first.headers["content-type"] == "image/png"
    pixel = Image.open(io.BytesIO(first.body())).convert("RGB").getpixel((5, 5))
    assert pixel == COLORS[unquote(sources[0][len(base) :])]
    assert page.request.get(base + "%E7%8C%AB/3.png").status == 404  # not in the preview: never read
    assert page.request.get(base + "..%2F..%2Fmodelworks.db").status == 404
    outsider = signed_in(world["outsider"]["token"])
    assert outsider.request.get(sources[0]).status == 404  # another project's member sees nothing
    axe_check(page)
    shot(page, "dataset-image-archive")
