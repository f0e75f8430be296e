"""Every use of Gradio's private parts, in one place, pinned to one Gradio version.

The app needs eight things Gradio has no public API for:

* ``pass_upload_path``: a ``gr.File`` whose jobs get the uploaded file's path and nothing more.
  Gradio 6.31's ``File._process_single_file`` opens an unused ``NamedTemporaryFile(delete=False)``
  in its cache on every call and never deletes it: one stray empty file per job, forever. The fix
  replaces that method on the instance (a ``gr.File`` subclass would make Gradio write a ``.pyi``
  stub beside the module that defines it).
* ``current_event`` / ``client_gone``: the running event's id (``gradio.context.LocalContext``)
  and whether its client went away (``Blocks._queue.active_jobs[...][...].alive``), so a job
  stops when its tab is closed.
* ``compute_example``: compute (or read back) one row of a lazily cached ``gr.Examples``
  (``Examples.load_from_cache``, undocumented), to warm the cache after start.
* ``recompute_missing_examples``: a cached example row whose result files are gone (Gradio's
  temporary files, deleted when the app stops) is computed again instead of served broken.
* ``accept_missing_inputs``: an API endpoint that grew optional trailing inputs still answers a
  raw ``/gradio_api/call/<name>`` request sending only the inputs it had before. ``gradio_client``
  fills a left-out parameter with its default itself; Gradio 6.31's ``Blocks.validate_inputs``
  refuses a raw request with fewer values than inputs. The fix wraps that method on the app
  instance and fills in the missing trailing inputs' initial values, for the named endpoints only.
* ``explain_refused_paths``: a raw API request naming a server file that was not uploaded
  (``{"path": "/etc/passwd"}``) is refused by Gradio 6.31 with ``InvalidPathError`` in
  ``Blocks.preprocess_data``, which reaches the client as ``{"error": null}`` (only ``gr.Error``
  messages are shown). The fix wraps that method on the app instance and raises a ``gr.Error``
  sentence instead; the file is still never read.
* ``REPLACE_ON_DROP_JS``: the page's script (``launch(js=...)``) that lets a file dropped on a
  filled drop zone replace the one there (Gradio 6.31's filled ``gr.File`` ignores a drop): it
  presses the zone's Clear button, then drops the file on the empty zone's ``.upload-container``.
* ``KEYBOARD_JS``: keyboard and screen-reader fixes Gradio 6.31's markup needs (WCAG 2 A/AA, found
  by the axe-core audit and the keyboard tests in ``tests/browser/test_browser_a11y.py``):
  - a ``gr.Radio``'s inputs each have their own ``name``, so arrows do not move within the group
    and each choice is a Tab stop: they get one shared name;
  - Tab out of an open dropdown leaves its list open (its async keydown handler reopens the list
    on any key but Escape, after the blur closed it): Tab is kept from that handler (stopped in
    the capture phase, not prevented, so the focus still moves);
  - a drop zone that takes a file re-renders and leaves the focus on the page: it goes back to
    the zone;
  - the upload button's ``aria-label`` differs from its visible text: removed (the text names it);
  - the empty image slider's ``div`` has an ``aria-label`` and no role: given ``role="img"``;
  - a selectable ``gr.Image`` (pick by pointing) wraps its picture in a ``button`` without a name:
    named by what a click does;
  - a ``gr.LinePlot``'s chart is named "Vega visualization": named by its label and its axes
    ("Classes over time (...): share of the frame (%) against time (s)").
  ``PAGE_JS`` runs both scripts, for ``launch(js=...)``, then marks ``<html data-page-script="ready">``.

``tests/webapp/test_gradio_compat.py`` checks each of these against the installed Gradio: the private
attributes exist with the expected signatures and the patch has its documented effect. On a
Gradio upgrade, run it first; a version other than ``GRADIO_VERSION`` is logged at import.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.context import LocalContext
from gradio.exceptions import InvalidPathError
from gradio.helpers import Examples
from gradio.utils import NamedString
from gradio_client.utils import is_valid_file

log = logging.getLogger(__name__)

GRADIO_VERSION = "6.31.0"  # the version these private parts were read from (README's sdk_version)

if gr.__version__ != GRADIO_VERSION:
    log.warning("Gradio %s is installed; webapp.gradio_compat was written for %s: "
                "run tests/webapp/test_gradio_compat.py", gr.__version__, GRADIO_VERSION)


# -- uploads ------------------------------------------------------------------------------------------
def pass_upload_path(component: gr.File) -> gr.File:
    """Make ``component`` (a ``type="filepath"`` ``gr.File``) hand its jobs the uploaded path as
    Gradio does, without the stray temporary file; returns the component."""
    component._process_single_file = functools.partial(_uploaded_path, component)
    return component


def _uploaded_path(component: gr.File, data) -> NamedString:
    """``File._process_single_file`` for ``type="filepath"``, less its ``NamedTemporaryFile``."""
    if component.file_types and not is_valid_file(data.path, component.file_types):
        raise gr.Error(f"Invalid file type. Please upload a file that is one of these formats: {component.file_types}")
    return NamedString(data.path)


# -- the running event and its client -------------------------------------------------------------
@dataclass(frozen=True)
class EventRef:
    """The Gradio event a handler runs in: its app and its id."""

    blocks: gr.Blocks
    event_id: str


def current_event() -> EventRef | None:
    """The event the calling handler runs in; None outside an event (e.g. computing an example)."""
    blocks = LocalContext.blocks.get(None)
    event_id = LocalContext.event_id.get(None)
    if blocks is None or not event_id:
        return None
    return EventRef(blocks, event_id)


def running_job(event: EventRef):
    """Gradio's queue entry (``gradio.queueing.Event``) of a running event, or None."""
    for jobs in list(event.blocks._queue.active_jobs):
        for job in jobs or ():
            if job._id == event.event_id:
                return job
    return None


_queue_unreadable = False


def client_gone(event: EventRef | None) -> bool:
    """Whether Gradio marked this event's client as gone (tab closed / disconnected)."""
    global _queue_unreadable
    if event is None or _queue_unreadable:
        return False
    try:
        job = running_job(event)
    except AttributeError:  # Gradio changed its queue: say so once, and let jobs run to their end
        _queue_unreadable = True
        log.exception("Cannot read Gradio %s's queue: jobs no longer stop when their client leaves",
                      gr.__version__)
        return False
    return job is not None and not job.alive


# -- optional trailing inputs of API endpoints -------------------------------------------------------
def accept_missing_inputs(app: gr.Blocks, required: dict[str, int]) -> None:
    """Let a request to an endpoint of ``required`` (api_name -> inputs every request must send)
    leave out the inputs after those: each missing one gets its component's initial value."""
    validate = app.validate_inputs

    def validate_inputs(block_fn, inputs: list) -> None:
        least = required.get(block_fn.api_name)
        if least is not None and least <= len(inputs) < len(block_fn.inputs):
            inputs.extend(block.value for block in block_fn.inputs[len(inputs):])
        return validate(block_fn, inputs)

    app.validate_inputs = validate_inputs


# -- files a request may not read -------------------------------------------------------------------
REFUSED_PATH = ("The request names a file on the server that was not uploaded to this app, so it is not read. "
                "Upload the file first (gradio_client's handle_file does).")


def explain_refused_paths(app: gr.Blocks) -> None:
    """Answer a request naming a server file Gradio refuses to read with a sentence (``REFUSED_PATH``)."""
    preprocess = app.preprocess_data

    async def preprocess_data(block_fn, inputs, *args, **kwargs):
        try:
            return await preprocess(block_fn, inputs, *args, **kwargs)
        except InvalidPathError as exc:
            log.info("Refused a request naming a file that was not uploaded: %s", exc)
            raise gr.Error(REFUSED_PATH, print_exception=False) from None

    app.preprocess_data = preprocess_data


# -- a file dropped on a filled drop zone -----------------------------------------------------------
REPLACE_ON_DROP_JS = """() => {
  const zoneOf = e => e.target && e.target.closest ? e.target.closest('#upload') : null;
  const filled = zone => zone && !zone.querySelector('input[type=file]');
  document.addEventListener('dragover', e => { if (filled(zoneOf(e))) e.preventDefault(); }, true);
  document.addEventListener('drop', async e => {
    const zone = zoneOf(e);
    if (!filled(zone) || !e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    e.stopPropagation();
    const file = e.dataTransfer.files[0];
    const clear = zone.querySelector("button[aria-label='Clear']");
    if (!clear) return;
    clear.click();
    // the empty zone's own drop target: hand it the file as the visitor's drop
    let target = null;
    for (let i = 0; i < 100 && !(target = filled(zone) ? null : zone.querySelector('.upload-container')); i++)
      await new Promise(r => setTimeout(r, 50));
    if (!target) return;
    const dt = new DataTransfer();
    dt.items.add(file);
    target.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt}));
  }, true);
}"""


KEYBOARD_JS = """() => {
  const fix = () => {
    for (const group of document.querySelectorAll('.block[id]')) {
      const radios = group.querySelectorAll('input[type=radio]');
      for (const r of radios) if (r.name !== group.id + '-choice') r.name = group.id + '-choice';
    }
    for (const e of document.querySelectorAll('.upload-container[aria-label]')) e.removeAttribute('aria-label');
    for (const e of document.querySelectorAll('.empty[aria-label]:not([role])')) e.setAttribute('role', 'img');
    for (const b of document.querySelectorAll('#pick-still .image-container > button:not([aria-label])')) {
      b.setAttribute('aria-label', 'Pick a class: click on the picture where it is');
    }
    for (const chart of document.querySelectorAll('.block[id] [role=graphics-document]')) {
      const label = chart.closest('.block[id]').querySelector('[data-testid=block-label], [data-testid=block-info]');
      const axes = [...chart.querySelectorAll('[aria-roledescription=axis]')]
        .map(a => (a.getAttribute('aria-label') || '').match(/titled '([^']+)'/)).filter(Boolean).map(m => m[1]);
      const name = label && label.textContent.trim() + (axes.length === 2 ? `: ${axes[1]} against ${axes[0]}` : '');
      if (name && chart.getAttribute('aria-label') !== name) chart.setAttribute('aria-label', name);
    }
  };
  new MutationObserver(fix).observe(document.body, {childList: true, subtree: true});
  fix();
  document.addEventListener('keydown', e => {
    if (e.key !== 'Tab' || !e.target.closest) return;
    // Gradio's own keydown handler reopens the list on any key but Escape, after the blur that
    // closed it: Tab does not reach it (the browser still moves the focus)
    if (e.target.matches('input[role=combobox]')) e.stopPropagation();
  }, true);
  let zone = null, since = 0;  // the drop zone the visitor last used, and when
  document.addEventListener('focusin', e => {
    const z = e.target.closest && e.target.closest('[id] .upload-container, [id] input[type=file]');
    if (z) { zone = z.closest('.block[id]'); since = Date.now(); }
  }, true);
  document.addEventListener('change', e => {
    if (e.target.matches && e.target.matches('input[type=file]')) {
      zone = e.target.closest('.block[id]'); since = Date.now();
    }
  }, true);
  new MutationObserver(() => {
    if (!zone || Date.now() - since > 10000 || document.activeElement !== document.body) return;
    const target = zone.querySelector('button, [tabindex="0"], a[href], input:not([type=file])');
    if (target) target.focus();
  }).observe(document.body, {childList: true, subtree: true});
}"""

# ``data-page-script="ready"`` on <html> once both run: a visitor's first key or drop before that
# would meet Gradio's unpatched handlers (the browser tests wait for it: tests/browser_checks.py)
PAGE_JS = ("() => { (" + REPLACE_ON_DROP_JS + ")(); (" + KEYBOARD_JS + ")();"
           " document.documentElement.dataset.pageScript = 'ready'; }")


# -- examples -------------------------------------------------------------------------------------
def compute_example(table: Examples, index: int) -> None:
    """Compute row ``index`` of a lazily cached example table, or read it back if cached."""
    table.load_from_cache(index)


def _file_paths(value) -> list[str]:
    """The server paths of the files a cached output names (``FileData``, as such or as dicts, in
    updates and lists)."""
    if isinstance(value, dict):
        found = [value["path"]] if isinstance(value.get("path"), str) and (value.get("meta") or {}).get(
            "_type", "gradio.FileData") == "gradio.FileData" else []
        return found + [p for k, v in value.items() if k != "path" for p in _file_paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _file_paths(v)]
    if hasattr(value, "model_dump"):  # FileData, ListFiles (a multiple gr.File's cached value)
        return _file_paths(value.model_dump())
    return []


def recompute_missing_examples(table: Examples) -> Examples:
    """A cached example row whose result files are gone is computed again, not served broken.

    Gradio 6.31's lazy example cache (``GRADIO_EXAMPLES_CACHE``) keeps each row's outputs as the
    paths of files in Gradio's temporary folder, which the app deletes when it stops (and its
    ``delete_cache`` sweep after a while): after a restart the row named files that no longer
    exist. The fix wraps ``Examples.load_from_cache`` on the instance: a row naming a missing file
    is forgotten (its line in ``cached_indices_file``, read under ``_cache_locks``, becomes -1, so
    the log's rows keep their numbers) and computed again. Returns ``table``."""
    load = table.load_from_cache

    def load_from_cache(example_id: int, request=None):
        output = load(example_id, request)
        missing = [p for p in _file_paths(output) if not os.path.isfile(p)]
        if not missing:
            return output
        log.info("Example %d's cached result is gone (%s): computing it again", example_id, missing[0])
        with table._cache_locks[example_id]:
            indices = Path(table.cached_indices_file)
            lines = indices.read_text().splitlines()
            indices.write_text("".join(("-1" if line.strip() == str(example_id) else line) + "\n" for line in lines))
        return load(example_id, request)

    table.load_from_cache = load_from_cache
    return table
