"""Shared test set-up: the weights cache points at ../shared/models (as in CI).

Tests that need real weights or shared media use the ``shared_models``,
``shared_images`` and ``shared_videos`` fixtures: they skip when the folder is
missing on a developer machine, and fail under CI=true, where a skip would
hide a broken set-up.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

if "SEGMENTATION_WEIGHTS" not in os.environ and (SHARED / "models").is_dir():
    os.environ["SEGMENTATION_WEIGHTS"] = str(SHARED / "models")


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"{path} is missing (real weights/media are needed for this test)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    return _need(Path(os.environ.get("SEGMENTATION_WEIGHTS", SHARED / "models")))


@pytest.fixture(scope="session")
def shared_images() -> Path:
    return _need(SHARED / "images")


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    return _need(SHARED / "videos")


@pytest.fixture(scope="session")
def shared_people() -> Path:
    """Person photos with masks (evaluation only: read here, never copied into the project)."""
    return _need(SHARED / "people")


@pytest.fixture(scope="session")
def default_segmenter(shared_models):
    from segmentation import Segmenter

    return Segmenter.create()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for test artefacts (screenshots, frames): artifacts/ in the project, git-ignored."""
    d = ROOT / "artifacts"
    d.mkdir(exist_ok=True)
    return d

