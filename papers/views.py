from django.shortcuts import get_object_or_404, render

from papers.models import Paper


def paper_detail(request, pk):
    """A paper's own page: where digests link when a feed gave no link of its own."""
    paper = get_object_or_404(Paper, pk=pk)
    return render(request, "papers/detail.html", {"paper": paper})
