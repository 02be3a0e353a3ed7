from tests.agent.conftest import SECRET, _agent_settings, active_prompt, flat_body, webhook  # noqa: F401
