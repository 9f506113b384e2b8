"""Writes of the optimization app: jobs (create, approve, cancel, transitions), the runner that advances them, the
tick, and notification settings. Views, tasks and commands are thin adapters over these functions."""
