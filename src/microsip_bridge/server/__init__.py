"""The daemon (`microsip-bridge serve`): a FastAPI app on uvicorn over the ingest pipeline.

* :mod:`.settings` - :class:`~.settings.DaemonSettings`, the daemon's settings from config.toml.
* :mod:`.app` - :func:`~.app.create_app`, which builds the ASGI app (the library object builds the
  app, as in datasette): the hook ingestion endpoint and the health check.
* :mod:`.security` - the token file, the token check, the Host check against DNS rebinding.
* :mod:`.cors` - the Origin allow-list (CSRF, WebSocket hijacking), CORS and Private Network
  Access answers for the allowed origins.
* :mod:`.auth` - the one check of every route and WebSocket: the token or a session cookie.
* :mod:`.sessions` and :mod:`.login` - one-time login links and the session cookies they open.
* :mod:`.client` - reaching the running daemon from another process (``microsip-bridge open``).
* :mod:`.runner` - :func:`~.runner.serve`: binds the socket, runs uvicorn, publishes
  ``daemon.json`` for the hook, stops cleanly on Ctrl-C and SIGTERM.

Nothing is imported here, so that ``microsip_bridge.server.security`` does not pay for FastAPI.
"""
