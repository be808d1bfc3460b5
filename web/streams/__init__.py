"""Event streams (``GET /api/v1/batches/<id>/events``): what they send (``protocol``, ``feed``),
who may open them and how many (``auth``, ``guard``), and the stream service that holds them
without a thread per client (``service``, ``hub``; ``python -m web.streams``). The Flask view
(``web.api.events``) serves the same route from the same code in a thread per stream."""
