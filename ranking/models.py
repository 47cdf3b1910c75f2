from django.db import models


class PaperEmbedding(models.Model):
    """A paper's sentence embedding (float32), computed once when the paper is stored.

    ``model`` names the model and a short hash of the text it embedded, so a re-import
    that changes only upvotes does not embed the paper again.
    """

    paper = models.OneToOneField("papers.Paper", on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    vector = models.BinaryField()
    model = models.CharField(max_length=80)

    def __str__(self):
        return f"embedding of paper {self.paper_id}"


class QueryEmbedding(models.Model):
    """A followed topic's sentence embedding, keyed by a hash of the model and the text.

    Only the hash is kept, never the words: a topic nobody follows any more leaves no
    trace of what someone typed.
    """

    key = models.CharField(max_length=64, unique=True)
    vector = models.BinaryField()

    def __str__(self):
        return self.key


class PaperNeighbours(models.Model):
    """A paper's nearest papers by sentence embedding, closest first, computed when it is
    stored (``ranking.neighbours``), so that a paper page reads them instead of searching.

    ``ids`` and ``cosines`` are parallel lists (at most ``neighbours.KEPT``, only those close
    enough to show). ``farthest`` is the cosine a new paper must beat to enter the list:
    the last one's when the list is full, else the lowest worth showing.
    """

    paper = models.OneToOneField("papers.Paper", on_delete=models.CASCADE, primary_key=True, related_name="neighbours")
    ids = models.JSONField(default=list)
    cosines = models.JSONField(default=list)
    farthest = models.FloatField()

    def __str__(self):
        return f"neighbours of paper {self.paper_id}"
