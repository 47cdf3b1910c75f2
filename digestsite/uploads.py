"""Request bodies over the size limit are refused before they are read.

Django parses a multipart body (and writes its files to disk) before any form can look at
a file's size, so a too-large upload used to be read in full and only then refused. The
middleware answers 413 from the ``Content-Length`` header alone. Django never reads more
of a body than that header says (none without it), so the header bounds what is read.
"""

from django.conf import settings
from django.http import HttpResponse


def request_limit() -> int:
    """Largest body accepted: the largest paper file plus room for the form around it."""
    return settings.PAPER_MAX_BYTES + 1024 * 1024


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = request_limit()
        if length > limit:
            return HttpResponse(
                f"Request body too large: {_megabytes(length)}; at most {_megabytes(limit)} is accepted. "
                "Nothing was read or imported.\n",
                status=413,
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)
