"""Rehearsal: a prompt version talks to simulated leads, several times per scenario, before any lead sees it.

models (scenarios, shared checks, judge calibration, runs and their plays), checks (deterministic and
judged), simulator (the simulated lead and one play, through the agent's own turn steps), services
(writes), selectors (the report and the release gate), tasks (Celery), apis/views/urls, admin.
"""
