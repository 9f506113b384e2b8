"""Models of the agentapi app."""
