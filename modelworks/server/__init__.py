"""The platform's HTTP API: thin routers over `modelworks.platform`.

=====================  ===========================================================
module                 holds
=====================  ===========================================================
``main``               `create_app`: assembles the routers, error handlers, checks
``dependencies``       database session, authentication, the access declarations
``guard``              the startup check that every route declares its access
``errors``             one JSON error shape for every 4xx/5xx
``openapi``            the OpenAPI document: each route's error answers, declared once
``downloads``          `Download`: a file as application/octet-stream, with its headers
``schemas``            request and response bodies
``routers/``           one module per resource
=====================  ===========================================================
"""

from modelworks.server.main import create_app

__all__ = ["create_app"]
