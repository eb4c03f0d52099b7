"""Running the serving app on uvicorn.

SIGTERM (or Ctrl-C) stops accepting connections, lets the requests in flight finish (up to
`graceful_s`), then answers everything still queued and exits: the lifespan's shutdown closes
each batcher after its queue is empty.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *, graceful_s: float = 30.0,
          log_level: str = "warning", access_log: bool = False) -> None:  # fmt: skip
    """Serve `app` until SIGTERM/SIGINT; binds to the loopback address unless told otherwise."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=graceful_s, lifespan="on")  # fmt: skip
    uvicorn.Server(config).run()
