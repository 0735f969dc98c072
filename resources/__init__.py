"""Bundled files: the default model and its card (models/), the sample pair (samples/).

This folder stays at the top of the source tree; pyproject.toml installs it as
the package ``ucn_gui.resources``. Find files with ``ucn_gui.core.resources``.
"""
