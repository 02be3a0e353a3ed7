api_patterns: list = []

page_patterns: list = []
