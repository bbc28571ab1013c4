"""drauditor's built-in checks: one module per check, each exposing META and run(context)."""
