"""The HTTP API's request and response models, shared by the server and the Python client.

Plain pydantic over ``slotbroker.domain`` and nothing else (tests/client/test_light_client.py walks the
imports): the client installs without numpy, SQLAlchemy or FastAPI, and a change inside ``services/`` or
the engine cannot change what goes over the wire. Converting engine results or store rows into these
models is the services' job (``services/find_slot/present.py``, ``services/inventory/presenters.py``).
"""
