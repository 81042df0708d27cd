"""Plain typed data and validation. No I/O lives here, so every rule can be tested in isolation."""
