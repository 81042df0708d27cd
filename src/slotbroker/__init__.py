"""slotbroker: a time-aware resource broker.

Layers point inward: ``domain`` (typed data, validation) <- ``engine`` (pure algorithms) <- ``store``
(SQLAlchemy persistence) <- ``services`` (use cases in transactions) <- adapters (``api``, ``cli``,
``client``); ``wire`` holds the request/response models the API and the client share, and ``bootstrap``
builds the service graph for every adapter. See docs/architecture.md.
"""

__version__ = "0.1.0"
