"""Check modules used by the registry tests, standing in for a third-party check pack."""
