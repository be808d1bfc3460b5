"""The API's parameter parsing, for the route modules: it lives in ``web.params`` so that the
stream service (``web.streams``), which imports nothing of ``web.api``, parses the same way."""

from web.params import DB_INT_MAX, id_segment, int_param  # noqa: F401
