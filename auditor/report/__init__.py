"""The report model and its renderers (terminal, JSON, JUnit, HTML, PDF)."""
