"""The server's endpoints, one module per group of routes; each handler is a function
of the app's ``State`` (``tuesday.serve.state``) and the request:

* ``predict``: ``POST /v1/models/NAME/predict`` (raw ASGI) and ``/batch`` (streamed);
* ``ingest``: ``POST /v1/ground-truth/SOURCE`` and ``/v1/events/SOURCE``;
* ``admin``: model versions, promote, rollback, deployment (read and change);
* ``status``: ``/health``, ``/ready``, ``/metrics``;
* ``docs``: ``/openapi.json`` and ``/docs``.

The route table that maps paths to them is ``tuesday.serve.server.create_app``.
"""
