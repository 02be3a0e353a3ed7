"""What the model costs: per conversation, per day and month against the budget, and the daily caps."""
