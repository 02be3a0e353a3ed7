"""The project's URLs plus one view that fails, for the branded 500 page test."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def _boom(request):
    raise RuntimeError("a bug")


urlpatterns = [*project_urlpatterns, path("boom/", _boom)]
