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


@pytest.fixture(scope="session")
def example_results(shared_models, shared_videos, shared_images, tmp_path_factory) -> None:
    """Every example's result in the app's cache (``.gradio/cached_examples/<hash of the code>``,
    shared by every app the tests start): an app warms it once and stops; a later call of the
    same code finds it there. The browser tests then show cached results, in any engine."""
    import time

    from app_server import start_app, stop_app

    srv = start_app(tmp_path_factory.mktemp("examples") / "app.log", SEGMENTATION_WARM_EXAMPLES="1")
    try:
        deadline = time.monotonic() + 1200
        while "Example results are cached." not in srv.log():
            assert srv.process.poll() is None and time.monotonic() < deadline, srv.log()[-3000:]
            time.sleep(1)
        assert "Could not compute the result of example" not in srv.log(), srv.log()[-3000:]
    finally:
        stop_app(srv.process)
