"""slotbroker: a time-aware resource broker.

Layers point inward: ``domain`` (typed data, validation) <- ``engine`` (pure algorithms) <- ``store``
(SQLAlchemy persistence) <- ``services`` (use cases in transactions) <- adapters (``api``, ``cli``,
``client``, ``web``). See docs/architecture.md.
"""

__version__ = "0.1.0"
