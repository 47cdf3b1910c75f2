import pytest

from papers.models import Paper


@pytest.mark.django_db
def test_paper_without_links_points_to_its_own_page_which_escapes_markup(client, settings):
    paper = Paper.objects.create(
        key="title:abc",
        title="<script>alert(1)</script> Sliding Anchors",
        abstract="We keep <b>long</b> contexts focused.",
        authors=["Mira Okonkwo", "Tobias Lindqvist"],
        upvotes=3,
    )
    assert paper.url == f"{settings.SITE_URL}/papers/{paper.pk}/"
    response = client.get(f"/papers/{paper.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Sliding Anchors" in body
    assert "<script>alert(1)" not in body
    assert "Mira Okonkwo, Tobias Lindqvist" in body
    assert "We keep &lt;b&gt;long&lt;/b&gt; contexts focused." in body


@pytest.mark.django_db
def test_paper_with_a_page_links_there(client):
    paper = Paper.objects.create(key="2401.12345", title="T", page_url="https://papers.example.org/2401.12345")
    assert paper.url == "https://papers.example.org/2401.12345"
    assert client.get("/papers/999999/").status_code == 404
