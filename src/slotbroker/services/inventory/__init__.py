"""Inventory: providers (region -> site -> host), their inventories, traits and aggregates, the
vocabulary they are described with (catalog), links and facility ports (network), whole topology
documents, and the demo's data. Every change bumps the provider's generation in the same transaction."""
