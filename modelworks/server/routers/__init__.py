"""One router per resource; `modelworks.server.main` mounts them under /api/v1."""
