"""Models of the templates_app app."""
