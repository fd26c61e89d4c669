from . import release


class CodeHeaderMiddleware:
    """Adds `X-Code: <release.CODE>` to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Code"] = release.CODE
        return response
