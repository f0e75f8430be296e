"""The web app behind ``app.py`` (the Hugging Face Space): everything the page and its HTTP API
do on top of the ``segmentation`` library.

The library knows nothing of this package (no HTML, no CSS, no Gradio). Modules:

* ``limits``: the server's limits from ``SEGMENTATION_*`` environment variables.
* ``checks``: validation of every user-supplied value (model id, mode, alpha, classes, upload).
* ``jobs``: the jobs' names in one place, re-exported from ``segmenters`` (segmenter cache),
  ``store`` (job outputs, disk budget, sweeper), ``request`` (a checked upload; a video job parsed
  and probed once), ``photo_job`` / ``video_job`` (the runs), ``results`` (outcomes, typed stats),
  ``estimates`` (disk reservations) and ``watch`` (stop, disk watch, frame rate).
* ``page``: the page's components, laid out (settings, the two tabs, the API's inputs, examples).
* ``views``: what the page shows (legend HTML and CSS, stats markdown) and the API's legend JSON.
* ``live``: one browser's live webcam session.
* ``examples``: the example media (pinned by sha256) and their rows' settings.
* ``context``: the app's context (limits, store, segmenters, logging), built by ``app.main``.
* ``handlers``: the Gradio event handlers (errors as one sentence, jobs off the event loop).
* ``gradio_compat``: every use of Gradio's private parts, pinned to one Gradio version.
"""
