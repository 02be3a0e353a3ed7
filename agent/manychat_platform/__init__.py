"""Using ManyChat's own tools: account checks, custom fields the agent fills, the handoff tag, flows."""
