from config.errors import Conflict


class ExampleAlreadyFlagged(Conflict):
    """The agent reply already has an example: the caller opens that one instead (409 on the API)."""

    def __init__(self, *, example_id: int) -> None:
        super().__init__(
            f"This reply was already flagged as example #{example_id}; open it instead.", field="message_id"
        )
        self.example_id = example_id
