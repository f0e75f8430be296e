"""The weights cache against a real HTTP server on 127.0.0.1, and the derived Autoseg cut.

A small fake "model" is served by ``http.server`` in a thread; a catalog-like
entry points its URLs at it. Every test gets its own empty cache folders
(``SEGMENTATION_WEIGHTS`` and the project ``weights/`` folder both moved into
``tmp_path``), so nothing outside the test's folders is read or written.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from weights_server import (FILENAME, OTHER, PAYLOAD, PAYLOAD_SHA, cache, fake_entry,  # noqa: F401 (fixtures)
                            listing, server)

from segmentation import weights
from segmentation.catalog import CATALOG
from segmentation.errors import WeightsError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_downloads_verifies_and_then_uses_the_cache(server, cache):
    entry = fake_entry(server.url("/ok"))
    seen = []
    path = weights.fetch(entry, timeout=10, progress=lambda done, total: seen.append((done, total)))
    assert path == cache / FILENAME
    assert path.read_bytes() == PAYLOAD
    assert _sha(path) == PAYLOAD_SHA
    assert listing(cache) == [FILENAME]  # no temporary file left beside it
    assert server.hits["/ok"] == 1
    assert seen and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    again = weights.fetch(entry, timeout=10)
    assert again == path
    assert server.hits["/ok"] == 1, "a verified cached file must not be downloaded again"


def test_wrong_checksum_is_refused_and_leaves_nothing(server, cache):
    entry = fake_entry(server.url("/other"))
    with pytest.raises(WeightsError) as info:
        weights.fetch(entry, timeout=10)
    msg = str(info.value)
    assert "'fake-model'" in msg
    assert server.url("/other") in msg
    assert "sha256" in msg
    assert str(cache / FILENAME) in msg, "the message must say where to place the file by hand"
    assert PAYLOAD_SHA in msg
    assert server.hits["/other"] == 1
    assert listing(cache) == [], "no file under the cache name and no *.part leftovers"


def test_download_refuses_mismatch_directly(server, cache):
    dest = cache / FILENAME
    with pytest.raises(ValueError, match="sha256 mismatch"):
        weights.download(server.url("/other"), dest, PAYLOAD_SHA, timeout=10)
    assert listing(cache) == []


def test_http_500_is_a_weights_error(server, cache):
    entry = fake_entry(server.url("/500"))
    with pytest.raises(WeightsError) as info:
        weights.fetch(entry, timeout=10)
    msg = str(info.value)
    assert f"{server.url('/500')}: HTTP Error 500" in msg
    assert str(cache / FILENAME) in msg
    assert server.hits["/500"] == 1
    assert listing(cache) == []


def test_connection_dropped_mid_file(server, cache):
    entry = fake_entry(server.url("/drop"))
    with pytest.raises(WeightsError) as info:
        weights.fetch(entry, timeout=10)
    msg = str(info.value)
    assert server.url("/drop") in msg
    assert f"of {len(PAYLOAD)} bytes" in msg
    assert server.hits["/drop"] == 1
    assert listing(cache) == []


def test_first_url_fails_second_succeeds(server, cache):
    entry = fake_entry(server.url("/500"), server.url("/ok"))
    path = weights.fetch(entry, timeout=10)
    assert path == cache / FILENAME and _sha(path) == PAYLOAD_SHA
    assert server.hits["/500"] == 1 and server.hits["/ok"] == 1
    assert listing(cache) == [FILENAME]


def test_all_urls_fail_lists_every_url(server, cache):
    entry = fake_entry(server.url("/404"), server.url("/other"))
    with pytest.raises(WeightsError) as info:
        weights.fetch(entry, timeout=10)
    msg = str(info.value)
    assert server.url("/404") in msg and server.url("/other") in msg
    assert listing(cache) == []


def test_cached_file_with_wrong_hash_is_replaced(server, cache):
    stale = cache / FILENAME
    stale.write_bytes(OTHER)
    path = weights.fetch(fake_entry(server.url("/ok")), timeout=10)
    assert path == stale
    assert path.read_bytes() == PAYLOAD
    assert server.hits["/ok"] == 1
    assert listing(cache) == [FILENAME]


def test_read_only_weights_folder_writes_to_project_folder(server, tmp_path, monkeypatch):
    ro = tmp_path / "readonly"
    ro.mkdir()
    project = tmp_path / "project_weights"
    monkeypatch.setenv(weights.ENV_VAR, str(ro))
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS", project)
    monkeypatch.setattr(weights, "INSTALLED_WEIGHTS", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    ro.chmod(0o555)
    try:
        assert weights.cache_dirs() == [ro.resolve(), project, (tmp_path / "xdg" / "segmentation").resolve()]
        assert weights.writable_dir() == project
        path = weights.fetch(fake_entry(server.url("/ok")), timeout=10)
        assert path == project / FILENAME
        assert _sha(path) == PAYLOAD_SHA
        assert listing(ro) == []
        # Found there next time, without a request.
        assert weights.fetch(fake_entry(server.url("/ok")), timeout=10) == path
        assert server.hits["/ok"] == 1
    finally:
        ro.chmod(0o755)


def test_read_only_folder_with_the_file_is_used_as_is(server, tmp_path, monkeypatch):
    ro = tmp_path / "readonly"
    ro.mkdir()
    (ro / FILENAME).write_bytes(PAYLOAD)
    monkeypatch.setenv(weights.ENV_VAR, str(ro))
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS", tmp_path / "project_weights")
    ro.chmod(0o555)
    try:
        assert weights.fetch(fake_entry(server.url("/ok")), timeout=10) == ro.resolve() / FILENAME
        assert server.hits["/ok"] == 0
    finally:
        ro.chmod(0o755)


def test_lookup_order_env_then_shipped_then_user_cache(server, tmp_path, monkeypatch):
    env, project, installed, xdg = (tmp_path / n for n in ("env", "project", "installed", "xdg"))
    user = xdg / "segmentation"
    for d in (env, project, installed, user):
        d.mkdir(parents=True)
    monkeypatch.setenv(weights.ENV_VAR, str(env))
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS", project)
    monkeypatch.setattr(weights, "INSTALLED_WEIGHTS", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    assert weights.cache_dirs() == [env.resolve(), project, installed, user.resolve()]
    entry = fake_entry(server.url("/ok"))
    (user / FILENAME).write_bytes(PAYLOAD)
    assert weights.fetch(entry) == user.resolve() / FILENAME
    (installed / FILENAME).write_bytes(PAYLOAD)
    assert weights.fetch(entry) == installed / FILENAME
    (project / FILENAME).write_bytes(PAYLOAD)
    assert weights.fetch(entry) == project / FILENAME
    (env / FILENAME).write_bytes(OTHER)  # a wrong file comes first: skipped, the next verified one is used
    assert weights.fetch(entry) == project / FILENAME
    (env / FILENAME).write_bytes(PAYLOAD)
    assert weights.fetch(entry) == env.resolve() / FILENAME
    assert server.hits["/ok"] == 0


def test_installed_package_is_searched_but_never_written(server, tmp_path, monkeypatch):
    """Installed with pip (no checkout, no SEGMENTATION_WEIGHTS): the shipped files are read from
    the ``segmentation_weights`` package; anything new goes to the per-user cache."""
    installed = tmp_path / "site-packages" / "segmentation_weights"
    installed.mkdir(parents=True)
    (installed / FILENAME).write_bytes(PAYLOAD)
    monkeypatch.delenv(weights.ENV_VAR, raising=False)
    monkeypatch.setattr(weights, "PROJECT_WEIGHTS", None)
    monkeypatch.setattr(weights, "INSTALLED_WEIGHTS", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    user = (tmp_path / "xdg" / "segmentation").resolve()
    assert weights.cache_dirs() == [installed, user]
    assert weights.fetch(fake_entry(server.url("/ok"))) == installed / FILENAME
    assert weights.writable_dir() == user
    other = replace(fake_entry(server.url("/ok")), filename="other.tflite")
    assert weights.fetch(other) == user / "other.tflite"
    assert listing(installed) == [FILENAME]
    assert server.hits["/ok"] == 1


def test_shipped_weights_folder_holds_every_embedded_model():
    """weights/ in the project ships every catalog TFLite file and the derived cut, each with its
    pinned sha256 and listed in weights/README.md."""
    from segmentation import derive

    shipped = Path(weights.__file__).resolve().parent.parent / "weights"
    readme = (shipped / "README.md").read_text()
    pinned = {e.filename: e.sha256 for e in CATALOG.values() if e.sha256 and e.urls}
    pinned.update(derive.DERIVED_SHA256)
    assert len(pinned) == 7  # 4 Coral/Autoseg files, the derived cut, 2 MediaPipe person models
    for name, sha in pinned.items():
        assert _sha(shipped / name) == sha, name
        assert name in readme and sha in readme
    assert (shipped / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_local_path_entry_and_missing_local_path(tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    assert weights.fetch(replace(fake_entry(), local_path=f)) == f
    with pytest.raises(WeightsError, match="does not exist"):
        weights.fetch(replace(fake_entry(), local_path=tmp_path / "gone.tflite"))


# -- derived model ----------------------------------------------------------------------
SOURCE_FILE = "autoseg_edgetpu_xs_fused_argmax.tflite"


@pytest.fixture
def derive_cache(shared_models, cache) -> Path:
    shutil.copy(shared_models / SOURCE_FILE, cache / SOURCE_FILE)
    return cache


def test_ensure_derived_cuts_the_published_model(derive_cache):
    from ai_edge_litert.interpreter import Interpreter

    from segmentation import derive

    entry = CATALOG["autoseg-edgetpu-xs"]
    path = derive.ensure_derived(entry)
    assert path == derive_cache / entry.filename
    assert _sha(path) == derive.DERIVED_SHA256[entry.filename]
    assert not [n for n in listing(derive_cache) if n.endswith(".part")]

    interp = Interpreter(model_path=str(path))
    outs = interp.get_output_details()
    assert len(outs) == 1
    assert list(outs[0]["shape"]) == [1, 64, 64, 32]
    assert np.dtype(outs[0]["dtype"]) == np.int8
    ins = interp.get_input_details()
    assert list(ins[0]["shape"]) == [1, 512, 512, 3]

    # Second call: the verified derived file is reused, not rewritten.
    mtime = path.stat().st_mtime_ns
    assert derive.ensure_derived(entry) == path
    assert path.stat().st_mtime_ns == mtime


def test_ensure_derived_refuses_an_unexpected_result(derive_cache, monkeypatch):
    from segmentation import derive

    entry = CATALOG["autoseg-edgetpu-xs"]
    monkeypatch.setitem(derive.DERIVED_SHA256, entry.filename, "0" * 64)
    with pytest.raises(WeightsError, match="derivation refused"):
        derive.ensure_derived(entry)
    assert listing(derive_cache) == [SOURCE_FILE]


def test_ensure_derived_refuses_a_tampered_source(cache, monkeypatch):
    from segmentation import derive

    (cache / SOURCE_FILE).write_bytes(b"tampered")
    entry = CATALOG["autoseg-edgetpu-xs"]
    # No network in the tests: the source's only URL is a closed local port.
    monkeypatch.setitem(CATALOG, entry.derive,
                        replace(CATALOG[entry.derive], urls=("http://127.0.0.1:9/none.tflite",)))
    with pytest.raises(WeightsError) as info:
        derive.ensure_derived(entry)
    msg = str(info.value)
    assert "wrong sha256" in msg and "http://127.0.0.1:9/none.tflite" in msg
    assert not (cache / entry.filename).exists()
