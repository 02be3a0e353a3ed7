from django import template

from leads.activity_text import activity_sentence
from leads.models import Activity

register = template.Library()


@register.filter(name="activity_sentence")
def activity_sentence_filter(activity: Activity) -> str:
    return activity_sentence(activity)
