"""A PAC that fails on demand, for the tests of what the chat and the command line do then."""

from __future__ import annotations

from integrations.cfdi.local import LocalIssuer


class FailingIssuer(LocalIssuer):
    """The local PAC, but issuing or cancelling fails the way a PAC can."""

    def __init__(self, issue_error=None, cancel_error=None):
        self.issue_error, self.cancel_error = issue_error, cancel_error

    def issue(self, document):
        if self.issue_error:
            raise self.issue_error
        return super().issue(document)

    def cancel(self, request):
        if self.cancel_error:
            raise self.cancel_error
        return super().cancel(request)
