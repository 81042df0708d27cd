"""Use cases, each one transaction (a unit of work): inventory, topology, tokens; later booking, planner."""
