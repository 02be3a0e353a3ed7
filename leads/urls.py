from django.shortcuts import redirect
from django.urls import path

from leads import apis, views


def root_redirect(request):
    return redirect("dashboard:home")


api_patterns = [
    path("leads/", apis.LeadListApi.as_view(), name="leads"),
    path("leads/<int:lead_id>/", apis.LeadDetailApi.as_view(), name="lead"),
    path("leads/<int:lead_id>/status/", apis.LeadSetStatusApi.as_view(), name="lead_status"),
    path("leads/<int:lead_id>/pause-bot/", apis.LeadPauseBotApi.as_view(), name="lead_pause_bot"),
    path("leads/<int:lead_id>/resume-bot/", apis.LeadResumeBotApi.as_view(), name="lead_resume_bot"),
    path("notifications/", apis.NotificationListApi.as_view(), name="notifications"),
    path("notifications/read-all/", apis.NotificationMarkAllReadApi.as_view(), name="notifications_read_all"),
    path(
        "notifications/<int:notification_id>/read/",
        apis.NotificationMarkReadApi.as_view(),
        name="notification_read",
    ),
]

# The dashboard home and the lead page read other apps too: they live in agent/dashboard/.
page_patterns = [
    path("leads/", views.LeadListView.as_view(), name="leads"),
    path("leads/<int:lead_id>/action/", views.LeadActionView.as_view(), name="lead_action"),
    path("notifications/", views.NotificationListView.as_view(), name="notifications"),
]
