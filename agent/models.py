# The agent owns no tables of its own: it writes leads, conversations and messages through leads.services.
