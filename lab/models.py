"""Models of the lab app."""
