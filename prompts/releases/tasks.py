from celery import shared_task

from prompts.releases import services


@shared_task(name="releases.check_experiments", time_limit=300, soft_time_limit=280)
def check_experiments() -> list[str]:
    return services.experiments_check()


@shared_task(name="releases.regression_watch", time_limit=300, soft_time_limit=280)
def regression_watch() -> list[int]:
    return services.regression_watch()


@shared_task(name="releases.retirement_watch", time_limit=120, soft_time_limit=110, max_retries=3)
def retirement_watch() -> list[str]:
    return services.retirement_watch()
