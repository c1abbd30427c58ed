"""The store config chooses the page-image format of the asset store."""

from __future__ import annotations

import pytest
from PIL import Image

from mmrag.config import PipelineConfig
from mmrag.store import open_assets

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("jpeg", ".jpg")])
def test_asset_format_from_config(tmp_path, fmt, suffix):
    config = PipelineConfig.from_dict(
        {"store": {"path": str(tmp_path), "asset_format": fmt, "asset_quality": 80}}
    )
    assets = open_assets(config.store)
    stored = assets.put("0123abcd-0000-0000-0000-000000000000", Image.new("RGB", (40, 30), "red"))
    assert stored.endswith(suffix)
    assert assets.get("0123abcd-0000-0000-0000-000000000000").size == (40, 30)
    assert (assets.format, assets.quality) == (fmt, 80)
