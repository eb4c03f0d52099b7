"""The web UI: server-rendered pages at ``/ui`` of the platform server (see README.md here)."""

from modelworks.ui.app import UPLOAD_PATH as UI_UPLOAD_PATH
from modelworks.ui.app import install_ui

__all__ = ["UI_UPLOAD_PATH", "install_ui"]
