"""Reads over training examples. The agent (agent app) and the training pages both read through here."""
