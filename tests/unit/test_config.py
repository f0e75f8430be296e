"""Configuration in one place: every SEGMENTATION_* variable is in segmentation/config.py's table,
read nowhere else, documented in docs/configuration.md, and a bad value is one sentence."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from segmentation import config

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- generated: segmentation.config.markdown() -->\n"


def test_docs_table_is_the_code_table():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.split(MARK, 1)[1] == config.markdown()


def test_every_variable_the_code_names_is_in_the_table_and_read_only_by_config():
    names = set()
    for path in [*ROOT.glob("segmentation/**/*.py"), *ROOT.glob("webapp/**/*.py"), ROOT / "app.py"]:
        text = path.read_text()
        names |= set(re.findall(r"SEGMENTATION_[A-Z_]+[A-Z]", text))
        if path.name != "config.py":
            # nothing outside config.py reads a SEGMENTATION_* variable from the environment itself
            assert not re.search(r"environ(?:\.get)?[\[(]\s*[\"']SEGMENTATION_", text), path
            assert not re.search(r"getenv\(\s*[\"']SEGMENTATION_", text), path
    assert names <= {s.name for s in config.SETTINGS}, names - {s.name for s in config.SETTINGS}


@pytest.mark.parametrize("name,raw,words", [
    ("SEGMENTATION_MAX_FRAMES", "lots", "SEGMENTATION_MAX_FRAMES must be a number, got 'lots'."),
    ("SEGMENTATION_MAX_FRAMES", "2.5", "must be a whole number above 0"),
    ("SEGMENTATION_MAX_UPLOAD_MB", "-1", "must be a number above 0"),
    ("SEGMENTATION_TRUSTED_PROXIES", "10.0.0.300", "IP addresses or networks"),
])
def test_bad_values_are_one_sentence(name, raw, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        config.read(name, {name: raw})


def test_values_defaults_and_flags():
    assert config.read("SEGMENTATION_MAX_FRAMES", {}) == 3600
    assert config.read("SEGMENTATION_MAX_FRAMES", {"SEGMENTATION_MAX_FRAMES": " 1_000 "}) == 1000
    assert config.read("SEGMENTATION_WARM_EXAMPLES", {"SEGMENTATION_WARM_EXAMPLES": "No"}) is False
    assert config.read("SEGMENTATION_WARM_EXAMPLES", {"SEGMENTATION_WARM_EXAMPLES": "yes"}) is True
    assert config.read("SEGMENTATION_TRUSTED_PROXIES", {}, "*") == ("*",)
    assert config.read("SEGMENTATION_TRUSTED_PROXIES", {"SEGMENTATION_TRUSTED_PROXIES": "10.1.2.3"}) == (
        "10.1.2.3/32",)
    config.check(env={})


def test_cli_refuses_a_bad_library_setting_in_one_line(tmp_path):
    import os

    env = dict(os.environ, SEGMENTATION_MAX_IMAGE_PIXELS="many", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "segmentation", str(ROOT / "examples" / "bird.bmp"), "-o",
                        str(tmp_path / "o.png")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: SEGMENTATION_MAX_IMAGE_PIXELS must be a number, got 'many'."]
    assert not (tmp_path / "o.png").exists()
