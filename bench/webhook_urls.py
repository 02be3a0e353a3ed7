"""The app's URLs plus /bench/bare/, a bare Django JSON view on the same stack (middleware, gunicorn)."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def bare(request):
    return JsonResponse({"version": "v2", "content": {"messages": []}})


urlpatterns = [path("bench/bare/", bare, name="bench-bare"), *app_urlpatterns]
