"""The README and the docs run as written (issue 19): every ```bash and ```python block of
README.md and of docs/*.md runs in a folder of small media, and a block that fails fails here.
The README stays a front page (under 200 lines), and every relative link of README.md and
docs/*.md points to a file that exists (and, for a ``#heading`` in a Markdown file, to a heading
that exists).

A block preceded by ``<!-- no-test: reason -->`` is skipped (installs, servers): the marker is
in the README's source, visible to anyone editing it, and counted here. Python blocks run one by
one as scripts (each must stand on its own, as a reader copies it); bash blocks run with
``set -e`` and ``python`` meaning this interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from media import corner_image, make_clip

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"(?P<marker><!--\s*no-test[^>]*-->\s*\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[str, str, str, bool]]:
    """(id, language, code, skipped) for every bash/python block of the README and docs/."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("lang")) + 1
            found.append((f"{doc.relative_to(ROOT)}:{line}", m.group("lang"), m.group("code"), bool(m.group("marker"))))
    return found


BLOCKS = blocks()
RUN = [b for b in BLOCKS if not b[3]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared_models) -> Path:
    """What the snippets name: photos, clips, a model file and its labels, a folder and a tree of clips."""
    d = tmp_path_factory.mktemp("readme")
    shutil.copy(ROOT / "examples" / "bird.bmp", d / "bird.bmp")
    from PIL import Image

    with Image.open(d / "bird.bmp") as im:
        small = im.convert("RGB").resize((128, 86))
    small.save(d / "photo.jpg")
    small.save(d / "bird.jpg")
    corner_image(64, 48).save(d / "beach.jpg")
    for name in ("clip.mp4", "in.mp4"):
        make_clip(d / name, frames=3, audio="aac", audio_rate=44100)
    (d / "videos").mkdir()
    make_clip(d / "videos" / "a.mp4", frames=2)
    make_clip(d / "videos" / "b.mp4", frames=2)
    (d / "footage" / "day1").mkdir(parents=True)
    make_clip(d / "footage" / "day1" / "c.mov", frames=2)
    shutil.copy(shared_models / "deeplabv3_mnv2_dm05_pascal_quant.tflite", d / "my_model.tflite")
    shutil.copy(shared_models / "pascal_voc_labels.txt", d / "my_labels.txt")
    return d


def test_every_block_runs_or_says_why_not():
    assert len(RUN) >= 6, [b[0] for b in RUN]
    assert {b[1] for b in RUN} == {"bash", "python"}
    skipped = [b[0] for b in BLOCKS if b[3]]
    assert len(skipped) <= 4, skipped  # installs, the app, Ray: a new skip is a decision, seen here


def test_docs_blocks_run_too():
    """Snippets that moved from the README to docs/ are still run."""
    docs = {b[0].split(":")[0] for b in RUN}
    assert "README.md" in docs and any(d.startswith("docs/") for d in docs), docs


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines: move the detail into docs/"


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(doc: Path) -> set[str]:
    """GitHub's ids for a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    ids = set()
    for line in FENCE.sub("", doc.read_text()).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            title = m.group(1).strip().lower()
            ids.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return ids


def _links() -> list[tuple[Path, str]]:
    return [(doc, m.group(1)) for doc in DOCS for m in LINK.finditer(FENCE.sub("", doc.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1))]


def test_every_relative_link_points_to_an_existing_file():
    links = _links()
    assert len(links) >= 20, links
    broken = []
    for doc, target in links:
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("where, lang, code, skipped", RUN, ids=[b[0] for b in RUN])
def test_block_runs_as_written(folder, where, lang, code, skipped):
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    if not python.exists():
        python.symlink_to(sys.executable)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    script = folder / ("snippet.py" if lang == "python" else "snippet.sh")
    script.write_text(code if lang == "python" else "set -e\n" + code)
    cmd = [sys.executable, str(script)] if lang == "python" else ["bash", str(script)]
    r = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{where} failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
