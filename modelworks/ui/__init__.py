"""The web UI: server-rendered pages at ``/ui`` of the platform server (see README.md here);
`modelworks.ui.app.install_ui` adds them to the app."""
