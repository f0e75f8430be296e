"""``webapp.gradio_compat`` against the installed Gradio: every private part the app touches.

Run this first after changing the Gradio version. Each test fails with a sentence saying which
private attribute or method moved, so the compatibility module (and only it) can be fixed.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import FileData
from gradio.helpers import Examples
from gradio.utils import NamedString

from webapp import gradio_compat
from webapp.gradio_compat import (REFUSED_PATH, REPLACE_ON_DROP_JS, EventRef, accept_missing_inputs, client_gone,
                                  compute_example, current_event, explain_refused_paths, pass_upload_path,
                                  running_job)

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_version_is_installed_and_pinned_everywhere():
    assert gr.__version__ == gradio_compat.GRADIO_VERSION, (
        f"Gradio {gr.__version__} is installed, webapp/gradio_compat.py was checked against "
        f"{gradio_compat.GRADIO_VERSION}: make this file pass, then update GRADIO_VERSION")
    pins = {"requirements.txt": r"^gradio==(\S+)$", "pyproject.toml": r'"gradio==([^"]+)"',
            "README.md": r"^sdk_version: (\S+)$"}
    for name, pattern in pins.items():
        found = re.findall(pattern, (ROOT / name).read_text(), re.M)
        assert found == [gradio_compat.GRADIO_VERSION], f"{name} pins Gradio {found}"


# -- uploads ------------------------------------------------------------------------------------------
def test_file_still_has_the_patched_method_with_its_signature():
    method = getattr(gr.File, "_process_single_file", None)
    assert method is not None, "gr.File._process_single_file is gone: pass_upload_path patches nothing"
    assert list(inspect.signature(method).parameters) == ["self", "f"]
    assert "self._process_single_file(" in inspect.getsource(gr.File.preprocess), \
        "gr.File.preprocess no longer calls _process_single_file: the patch has no effect"


def _upload(tmp_path: Path, name: str = "clip.mp4") -> FileData:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"data")
    return FileData(path=str(path), orig_name=name)


def test_unpatched_file_still_leaks_a_temporary_file(tmp_path):
    """Why the patch exists: Gradio's File leaves an empty temporary file per job. When this fails,
    Gradio has fixed it: remove ``pass_upload_path`` (and this test)."""
    component = gr.File(file_types=["video", "image"])
    component.GRADIO_CACHE = str(tmp_path / "cache")
    Path(component.GRADIO_CACHE).mkdir()
    value = component.preprocess(_upload(tmp_path))
    assert isinstance(value, NamedString)
    assert len(list(Path(component.GRADIO_CACHE).iterdir())) == 1


def test_patched_file_gives_the_path_and_leaves_nothing(tmp_path):
    component = pass_upload_path(gr.File(file_types=["video", "image"]))
    component.GRADIO_CACHE = str(tmp_path / "cache")
    Path(component.GRADIO_CACHE).mkdir()
    data = _upload(tmp_path)
    value = component.preprocess(data)
    assert isinstance(value, NamedString) and value == data.path and value.name == data.path
    assert list(Path(component.GRADIO_CACHE).iterdir()) == []


def test_patched_file_refuses_other_types_as_gradio_does(tmp_path):
    data = _upload(tmp_path, "script.py")
    messages = []
    for component in (gr.File(file_types=["video", "image"]), pass_upload_path(gr.File(file_types=["video", "image"]))):
        component.GRADIO_CACHE = str(tmp_path)
        with pytest.raises(gr.Error) as info:
            component.preprocess(data)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "Invalid file type" in messages[0]


# -- the running event and its client -------------------------------------------------------------
def test_no_event_outside_a_handler():
    assert current_event() is None and client_gone(None) is False


def test_the_event_is_found_in_the_queue_while_it_runs():
    """In a real queued event: its id, its entry in ``Blocks._queue.active_jobs``, ``alive``."""
    seen = {}

    def handler(x):
        event = current_event()
        seen["event"] = event
        seen["job"] = running_job(event) if event else None
        seen["gone"] = client_gone(event)
        return x

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(handler, box, box, api_name="echo")
    demo.queue()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        from gradio_client import Client

        client = Client(demo.local_url, verbose=False, analytics_enabled=False)
        assert client.predict("hi", api_name="/echo") == "hi"
    finally:
        demo.close()
    event = seen["event"]
    assert isinstance(event, EventRef) and event.blocks is demo and event.event_id, event
    job = seen["job"]
    assert job is not None, "the running event is not in Blocks._queue.active_jobs (matched by Event._id)"
    assert job.alive is True and seen["gone"] is False


def test_a_gone_client_is_seen(monkeypatch):
    """``client_gone`` reads ``alive`` of the event's queue entry (what Gradio sets on a disconnect)."""
    import gradio.queueing

    assert "self.alive = True" in inspect.getsource(gradio.queueing.Event.__init__)
    assert re.search(r"\.alive = False", inspect.getsource(gradio.queueing)), "Gradio no longer marks gone clients"

    class Job:
        _id, alive = "e1", False

    class Queue:
        active_jobs = [None, [Job()]]

    class Blocks:
        _queue = Queue()

    assert client_gone(EventRef(Blocks(), "e1")) is True
    assert client_gone(EventRef(Blocks(), "e2")) is False


# -- optional trailing inputs ----------------------------------------------------------------------
def test_raw_calls_may_leave_out_the_trailing_inputs():
    """Gradio itself refuses a raw call with fewer values than inputs; patched, the missing trailing
    ones get their components' initial values, for the named endpoints and no others."""
    import httpx

    assert "didn't receive enough input values" in inspect.getsource(gr.Blocks.validate_inputs)

    def join(*parts):
        return "|".join(str(p) for p in parts)

    with gr.Blocks() as demo:
        a, b, c = gr.Textbox(), gr.Number(15), gr.Textbox("#00ff00")
        out = gr.Textbox()
        gr.Button().click(join, [a, b, c], out, api_name="grown")
        gr.Button().click(join, [a, b, c], out, api_name="strict")
    accept_missing_inputs(demo, {"grown": 1})
    demo.queue()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)

    def call(name: str, data: list) -> str:
        event = httpx.post(f"{demo.local_url}gradio_api/call/{name}", json={"data": data}, timeout=30).json()
        return httpx.get(f"{demo.local_url}gradio_api/call/{name}/{event['event_id']}", timeout=30).text

    try:
        assert '["x|15|#00ff00"]' in call("grown", ["x"])
        assert '["x|2|#00ff00"]' in call("grown", ["x", 2])
        assert '["x|2|red"]' in call("grown", ["x", 2, "red"])
        assert "event: error" in call("grown", [])  # fewer than the required ones: Gradio's own refusal
        assert "event: error" in call("strict", ["x"])
    finally:
        demo.close()


def test_a_server_file_not_uploaded_is_refused_with_a_sentence(tmp_path):
    """Gradio refuses a raw call naming a file that was not uploaded with InvalidPathError in
    preprocess_data, shown as {"error": null}; patched, the client gets REFUSED_PATH, and the
    handler never runs."""
    import httpx

    assert "async def preprocess_data(" in inspect.getsource(gr.Blocks)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    ran = []

    def show(path):
        ran.append(path)
        return "read"

    def call(patched: bool) -> str:
        with gr.Blocks() as demo:
            f, out = gr.File(), gr.Textbox()
            gr.Button().click(show, f, out, api_name="show")
        if patched:
            explain_refused_paths(demo)
        demo.queue()
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
        try:
            data = [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}]
            event = httpx.post(f"{demo.local_url}gradio_api/call/show", json={"data": data}, timeout=30).json()
            return httpx.get(f"{demo.local_url}gradio_api/call/show/{event['event_id']}", timeout=30).text
        finally:
            demo.close()

    assert '"error": null' in call(False), "Gradio now explains the refusal itself: drop the patch"
    text = call(True)
    assert "event: error" in text and REFUSED_PATH.split(",")[0] in text, text
    assert not ran


def test_drop_script_uses_the_zones_gradio_has():
    """The drop script presses the filled zone's Clear button and drops on the empty zone's
    .upload-container (checked in a browser by tests/browser/test_browser_jobs.py); both exist in 6.31's page."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    text = "".join(p.read_text(errors="replace") for p in assets.glob("*.js") if p.stat().st_size < 2_000_000)
    assert "upload-container" in text and "Clear" in text
    assert "button[aria-label='Clear']" in REPLACE_ON_DROP_JS and ".upload-container" in REPLACE_ON_DROP_JS


# -- examples -------------------------------------------------------------------------------------
def test_lazy_example_is_computed_once(tmp_path, monkeypatch):
    assert list(inspect.signature(Examples.load_from_cache).parameters) == ["self", "example_id", "request"]
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path))
    calls = []

    def double(x):
        calls.append(x)
        return x * 2

    with gr.Blocks():
        box, out = gr.Textbox(), gr.Textbox()
        table = gr.Examples([["a"], ["b"]], [box], [out], fn=double, cache_examples=True, cache_mode="lazy")
    assert len(table.examples) == 2
    compute_example(table, 1)
    compute_example(table, 1)
    assert calls == ["b"]


def _file_table(tmp_path, monkeypatch, calls: list) -> Examples:
    """A lazily cached example table whose results are files, as the page's are (in updates)."""
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))

    def write(x):
        calls.append(x)
        out = tmp_path / f"result-{len(calls)}.txt"
        out.write_text(x)
        return gr.update(value=str(out), visible=True), [str(out)]

    with gr.Blocks():
        box, one, many = gr.Textbox(), gr.File(), gr.File(file_count="multiple")
        return gr.Examples([["a"], ["b"]], [box], [one, many], fn=write, cache_examples=True, cache_mode="lazy")


def _paths(output) -> list[str]:
    return gradio_compat._file_paths(output)


def test_a_cached_example_whose_files_are_gone_is_computed_again(tmp_path, monkeypatch):
    """Gradio keeps a cached row's files in its temporary folder, deleted when the app stops: after
    a restart the row names missing files (unpatched), or is computed again (patched)."""
    assert {"cached_indices_file", "_cache_locks"} <= set(vars(_file_table(tmp_path / "x", monkeypatch, [])))
    calls: list = []
    table = _file_table(tmp_path, monkeypatch, calls)
    first = table.load_from_cache(1)
    assert calls == ["b"] and len(_paths(first)) == 2 and all(Path(p).is_file() for p in _paths(first))
    for p in _paths(first):
        Path(p).unlink(missing_ok=True)  # the app stopped: its temporary files went
    assert not any(Path(p).is_file() for p in _paths(table.load_from_cache(1))), "unpatched: served broken"
    assert calls == ["b"]
    gradio_compat.recompute_missing_examples(table)
    again = table.load_from_cache(1)
    assert calls == ["b", "b"] and all(Path(p).is_file() for p in _paths(again)), again
    assert _paths(table.load_from_cache(1)) == _paths(again) and calls == ["b", "b"]  # then served as cached
    table.load_from_cache(0)
    assert calls == ["b", "b", "a"]  # the other rows keep their places


def test_the_page_script_runs_both_fixes():
    """PAGE_JS (launch(js=...)) runs the drop-to-replace script and the keyboard fixes; the selectors
    KEYBOARD_JS relies on are Gradio 6.31's (checked in the page by tests/browser/test_browser_a11y.py)."""
    from webapp.gradio_compat import KEYBOARD_JS, PAGE_JS

    assert REPLACE_ON_DROP_JS in PAGE_JS and KEYBOARD_JS in PAGE_JS
    for selector in ("input[type=radio]", ".upload-container[aria-label]", ".empty[aria-label]",
                     "input[role=combobox]"):
        assert selector in KEYBOARD_JS, selector
