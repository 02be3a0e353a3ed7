from django.urls import path

from agent.inbox import apis, views

page_patterns = [
    path("inbox/", views.InboxView.as_view(), name="inbox"),
    path("inbox/<int:lead_id>/", views.ConversationView.as_view(), name="inbox_conversation"),
    path("inbox/<int:lead_id>/thread/", views.ThreadFragmentView.as_view(), name="inbox_thread"),
    path("inbox/<int:lead_id>/<slug:action>/", views.ConversationActionView.as_view(), name="inbox_action"),
    path(
        "inbox/<int:lead_id>/drafts/<int:draft_id>/<slug:action>/",
        views.DraftActionView.as_view(),
        name="inbox_draft_action",
    ),
    path(
        "inbox/candidates/<int:candidate_id>/<slug:action>/",
        views.CandidateActionView.as_view(),
        name="inbox_candidate_action",
    ),
]

api_patterns = [
    path("inbox/", apis.InboxQueueApi.as_view(), name="inbox_queue"),
    path("inbox/leads/<int:lead_id>/thread/", apis.InboxThreadApi.as_view(), name="inbox_thread"),
    path("inbox/leads/<int:lead_id>/messages/", apis.InboxMessageSendApi.as_view(), name="inbox_send"),
    path("inbox/leads/<int:lead_id>/notes/", apis.InboxNoteAddApi.as_view(), name="inbox_note"),
    path("inbox/leads/<int:lead_id>/assign/", apis.InboxAssignApi.as_view(), name="inbox_assign"),
    path("inbox/leads/<int:lead_id>/take-over/", apis.InboxTakeOverApi.as_view(), name="inbox_take_over"),
    path("inbox/leads/<int:lead_id>/hand-back/", apis.InboxHandBackApi.as_view(), name="inbox_hand_back"),
    path("inbox/leads/<int:lead_id>/drafts/", apis.InboxDraftListApi.as_view(), name="inbox_drafts"),
    path(
        "inbox/leads/<int:lead_id>/drafts/<int:draft_id>/send/",
        apis.InboxDraftSendApi.as_view(),
        name="inbox_draft_send",
    ),
    path(
        "inbox/leads/<int:lead_id>/drafts/<int:draft_id>/discard/",
        apis.InboxDraftDiscardApi.as_view(),
        name="inbox_draft_discard",
    ),
    path("inbox/leads/<int:lead_id>/draft-mode/", apis.InboxDraftModeApi.as_view(), name="inbox_draft_mode"),
    path("inbox/candidates/", apis.InboxCandidateListApi.as_view(), name="inbox_candidates"),
    path(
        "inbox/candidates/<int:candidate_id>/submit/",
        apis.InboxCandidateSubmitApi.as_view(),
        name="inbox_candidate_submit",
    ),
    path(
        "inbox/candidates/<int:candidate_id>/dismiss/",
        apis.InboxCandidateDismissApi.as_view(),
        name="inbox_candidate_dismiss",
    ),
]
