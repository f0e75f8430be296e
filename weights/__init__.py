"""The embedded model files (``*.tflite``, ``LICENSE``, ``README.md``): data, no code.

In the repository this is the top-level ``weights/`` folder; ``pip install`` installs it as
the ``segmentation_weights`` package (see ``pyproject.toml``), where ``segmentation.weights``
finds it without importing it.
"""
