"""The asset store: page images by item id, on a folder and on fsspec's memory filesystem."""

from __future__ import annotations

import uuid

import pytest
from PIL import Image

from mmrag.config import StoreConfig
from mmrag.errors import ConfigError
from mmrag.store import open_assets
from mmrag.store.assets import AssetNotFoundError, AssetStore

pytestmark = pytest.mark.unit


def page(color: str = "red", size=(40, 30), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


@pytest.fixture(params=["folder", "memory"])
def assets(request, tmp_path) -> AssetStore:
    if request.param == "folder":
        return AssetStore(tmp_path / "assets")
    return AssetStore(f"memory://mmrag-test-{uuid.uuid4().hex}")


def test_put_get_round_trip_is_lossless_in_png(assets):
    item_id = str(uuid.uuid4())
    image = page()
    image.putpixel((3, 4), (1, 2, 3))
    url = assets.put(item_id, image)
    assert url == assets.url(item_id) and url.endswith(f"/{item_id[:2]}/{item_id}.png")
    assert assets.exists(item_id)
    back = assets.get(item_id)
    assert back.size == (40, 30) and back.getpixel((3, 4)) == (1, 2, 3)


def test_overwrite_and_delete(assets):
    item_id = str(uuid.uuid4())
    assets.put(item_id, page("red"))
    assets.put(item_id, page("blue"))
    assert assets.get(item_id).getpixel((0, 0)) == (0, 0, 255)
    assert assets.delete([item_id, "missing-id"]) == 1
    assert not assets.exists(item_id)
    with pytest.raises(AssetNotFoundError, match=item_id):
        assets.get(item_id)


def test_jpeg_with_quality_and_mode_conversion(tmp_path):
    store = AssetStore(tmp_path, format="jpeg", quality=80)
    item_id = str(uuid.uuid4())
    url = store.put(item_id, page("green", mode="RGBA"))
    assert url.endswith(".jpg")
    back = store.get(item_id)
    assert back.mode == "RGB" and back.size == (40, 30)


def test_changing_the_format_keeps_images_readable_and_replaces_stale_ones(tmp_path):
    item_id = str(uuid.uuid4())
    AssetStore(tmp_path).put(item_id, page())
    jpeg = AssetStore(tmp_path, format="jpeg")
    assert jpeg.get(item_id).size == (40, 30)  # found in the other format
    jpeg.put(item_id, page())
    assert not (tmp_path / item_id[:2] / f"{item_id}.png").exists()
    assert (tmp_path / item_id[:2] / f"{item_id}.jpg").exists()


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = AssetStore(tmp_path)
    for _ in range(5):
        store.put("abc123", page())
    assert sorted(p.name for p in (tmp_path / "ab").iterdir()) == ["abc123.png"]


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", "x" * 200])
def test_keys_must_be_item_ids(tmp_path, bad):
    with pytest.raises(ConfigError, match="not an item id"):
        AssetStore(tmp_path).put(bad, page())


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="png"):
        AssetStore(tmp_path, format="webp")
    with pytest.raises(ConfigError, match="quality"):
        AssetStore(tmp_path, format="jpeg", quality=0)


def test_open_assets_defaults_to_the_index_folder(tmp_path):
    store = open_assets(StoreConfig(path=str(tmp_path / "idx")))
    store.put("abc", page())
    assert (tmp_path / "idx" / "assets" / "ab" / "abc.png").is_file()
    memory = open_assets(StoreConfig(assets="memory://elsewhere"), format="jpeg")
    assert memory.url("abc") == "memory:///elsewhere/ab/abc.jpg"
