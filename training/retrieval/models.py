"""Retrieval facts: one embedding per example, and which examples the model saw with each reply."""

from django.db import models
from django.db.models import Q


class ExampleEmbedding(models.Model):
    """An example's lead message as a float32 vector (little-endian bytes), computed once per model."""

    example = models.OneToOneField(
        "training.TrainingExample", primary_key=True, on_delete=models.CASCADE, related_name="embedding"
    )
    model = models.CharField(max_length=100)
    dims = models.PositiveIntegerField()
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "training_example_embeddings"
        constraints = [
            models.CheckConstraint(condition=Q(dims__gt=0), name="training_embedding_dims_positive")
        ]

    def __str__(self) -> str:
        return f"embedding of example {self.example_id} ({self.model}, {self.dims})"


class RetrievalMethod(models.TextChoices):
    EMBEDDING = "embedding", "Embedding similarity"
    FULL_TEXT = "fulltext", "Full-text ranking"
    WORDS = "words", "Word-stem overlap"
    RECENT = "recent", "Most recently approved"


class ExampleUse(models.Model):
    """An approved example shown to the model when it wrote `message` (an agent reply), with its score."""

    message = models.ForeignKey("leads.Message", on_delete=models.CASCADE, related_name="example_uses")
    example = models.ForeignKey("training.TrainingExample", on_delete=models.CASCADE, related_name="uses")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    method = models.CharField(max_length=16, choices=RetrievalMethod.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "training_example_uses"
        ordering = ["message_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["message", "example"], name="training_use_unique"),
            models.CheckConstraint(
                condition=Q(method__in=RetrievalMethod.values), name="training_use_method_valid"
            ),
        ]
        indexes = [models.Index(fields=["example", "created_at"], name="idx_training_use_example")]

    def __str__(self) -> str:
        return f"example {self.example_id} in reply {self.message_id} (#{self.rank})"
