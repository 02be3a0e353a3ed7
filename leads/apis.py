from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm, Pagination, paginated_response
from leads import roles, selectors, services
from leads.models import Lead, LeadStatus, Notification


class LeadOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    manychat_subscriber_id = serializers.CharField()
    channel = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    username = serializers.CharField()
    phone = serializers.CharField()
    email = serializers.CharField()
    status = serializers.CharField()
    bot_paused = serializers.BooleanField()
    needs_human = serializers.BooleanField()
    handoff_reason = serializers.CharField()
    qualification_data = serializers.JSONField()
    created_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField(allow_null=True)


class LeadListApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_LEADS)]
    pagination_class = Pagination  # documents the page envelope in the schema

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(required=False, allow_blank=True, default="")
        status = serializers.ChoiceField(
            choices=LeadStatus.choices, required=False, allow_blank=True, default=""
        )

    OutputSerializer = LeadOutputSerializer

    @extend_schema(
        operation_id="leads_list", parameters=[FilterSerializer], responses=LeadOutputSerializer(many=True)
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.lead_list(**filters.validated_data)
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=self.OutputSerializer
        )


class LeadDetailApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_LEADS)]

    class OutputSerializer(LeadOutputSerializer):
        class Meta:
            ref_name = "LeadDetail"

        class MessageSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            conversation_id = serializers.IntegerField()
            role = serializers.CharField()
            text = serializers.CharField()
            created_at = serializers.DateTimeField()

        messages = MessageSerializer(many=True)

    @extend_schema(operation_id="leads_retrieve", responses=OutputSerializer)
    def get(self, request, lead_id: int):
        lead = get_object_or_404(Lead, pk=lead_id)
        lead.messages = list(selectors.lead_transcript(lead=lead))
        return Response(self.OutputSerializer(lead).data)


class LeadSetStatusApi(APIView):
    permission_classes = [HasPerm(roles.PERM_CHANGE_LEAD)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LeadSetStatusInput"

        status = serializers.ChoiceField(choices=LeadStatus.choices)
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)

    @extend_schema(request=InputSerializer, responses=LeadOutputSerializer)
    def post(self, request, lead_id: int):
        lead = get_object_or_404(Lead, pk=lead_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = services.lead_set_status(lead=lead, actor=request.user, **data.validated_data)
        return Response(LeadOutputSerializer(lead).data)


class LeadPauseBotApi(APIView):
    permission_classes = [HasPerm(roles.PERM_CHANGE_LEAD)]

    @extend_schema(request=None, responses=LeadOutputSerializer)
    def post(self, request, lead_id: int):
        lead = services.lead_pause_bot(lead=get_object_or_404(Lead, pk=lead_id), actor=request.user)
        return Response(LeadOutputSerializer(lead).data)


class LeadResumeBotApi(APIView):
    permission_classes = [HasPerm(roles.PERM_CHANGE_LEAD)]

    @extend_schema(request=None, responses=LeadOutputSerializer)
    def post(self, request, lead_id: int):
        lead = services.lead_resume_bot(lead=get_object_or_404(Lead, pk=lead_id), actor=request.user)
        return Response(LeadOutputSerializer(lead).data)


class NotificationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    verb = serializers.CharField()
    message = serializers.CharField()
    url = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationListApi(APIView):
    pagination_class = Pagination  # documents the page envelope in the schema

    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, default=False)

    OutputSerializer = NotificationOutputSerializer

    @extend_schema(
        operation_id="notifications_list",
        parameters=[FilterSerializer],
        responses=NotificationOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.notification_list(user=request.user)
        if filters.validated_data["unread"]:
            queryset = queryset.filter(read_at__isnull=True)
        response = paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=self.OutputSerializer
        )
        response.data["unread"] = selectors.notifications_unread_count(user=request.user)
        return response


class NotificationMarkReadApi(APIView):
    @extend_schema(request=None, responses=NotificationOutputSerializer)
    def post(self, request, notification_id: int):
        # Someone else's notification is a 404, not a 403: its existence is not ours to reveal.
        notification = get_object_or_404(Notification, pk=notification_id, recipient=request.user)
        notification = services.notification_mark_read(notification=notification)
        return Response(NotificationOutputSerializer(notification).data)


class NotificationMarkAllReadApi(APIView):
    @extend_schema(
        request=None,
        responses=inline_serializer(
            "NotificationsMarkedSerializer", fields={"marked": serializers.IntegerField()}
        ),
    )
    def post(self, request):
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked}, status=status.HTTP_200_OK)
