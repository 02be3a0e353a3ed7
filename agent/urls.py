webhook_patterns: list = []
