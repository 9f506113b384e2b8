"""Models of the hibernation app."""
