import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from leads.models import Activity, Channel, Conversation, Lead, Message, MessageRole, Notification
from prompts.models import PromptVersion
from training.models import ExampleStatus, ExampleType, TrainingExample

User = get_user_model()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("pass-for-tests-2026")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    manychat_subscriber_id = factory.Sequence(lambda n: str(100000 + n))
    channel = Channel.INSTAGRAM
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    username = factory.Sequence(lambda n: f"lead_{n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    lead = factory.SubFactory(LeadFactory)
    channel = factory.SelfAttribute("lead.channel")
    last_message_at = factory.LazyFunction(timezone.now)


class PromptVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptVersion

    version = factory.Sequence(lambda n: n + 1)
    content = factory.LazyAttribute(lambda p: f"You are a helpful sales assistant. (version {p.version})")
    change_note = "test version"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = MessageRole.LEAD
    text = factory.Faker("sentence")


class AgentMessageFactory(MessageFactory):
    role = MessageRole.AGENT
    prompt_version = factory.SubFactory(PromptVersionFactory)
    delivery_status = "returned"
    model = "test-model"
    prompt_tokens = 120
    completion_tokens = 40
    latency_ms = 850


class TrainingExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingExample

    user_message = factory.Faker("sentence")
    ai_response = factory.Faker("sentence")
    feedback = factory.Faker("sentence")
    example_type = ExampleType.GOOD
    status = ExampleStatus.PENDING


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    verb = "test.event"


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    verb = "test.event"
    message = "Something happened"
