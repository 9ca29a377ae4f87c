"""Thin routers: check access, call the services, shape the answer.

API routers carry the ``/api/v1`` prefix themselves (rather than getting it when included) so that a
route's own path is the full template the metrics label requests with.
"""

API_PREFIX = "/api/v1"
