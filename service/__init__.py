"""haul: a self-hostable media download service.

Everything the API and the workers share lives in this package; it never imports
``actors``.
"""
