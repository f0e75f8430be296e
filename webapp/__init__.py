"""The web app behind ``app.py`` (the Hugging Face Space): everything the page and its HTTP API
do on top of the ``segmentation`` library.

The library knows nothing of this package (no HTML, no CSS, no Gradio). Modules:

* ``limits``: the server's limits from ``SEGMENTATION_*`` environment variables.
* ``checks``: validation of every user-supplied value (model id, mode, alpha, classes, upload).
* ``jobs``: segmenter cache, the job output store and its sweeper, photo and video jobs.
* ``page``: the page's components, laid out (settings, the two tabs, the API's inputs, examples).
* ``views``: what the page shows (legend HTML and CSS, stats markdown) and the API's legend JSON.
* ``live``: one browser's live webcam session.
* ``examples``: the example media (pinned by sha256) and their rows' settings.
* ``context``: the app's context (limits, store, segmenters, logging), built by ``app.main``.
* ``handlers``: the Gradio event handlers (errors as one sentence, jobs off the event loop).
* ``gradio_compat``: every use of Gradio's private parts, pinned to one Gradio version.
"""
