"""The bodies fal answers with when something goes wrong (fal-protocol.md §4, §5), verbatim."""

from __future__ import annotations

NO_USER = {"detail": "No user found for Key ID and Secret"}
RATE_LIMITED = {"detail": "Rate limit exceeded, please retry later", "error_type": "rate_limited"}
INTERNAL_ERROR = {"detail": "Internal Server Error", "error_type": "internal_error"}
INGRESS_503_HTML = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
RUNNER_FAILED = {"detail": "Internal Server Error", "error_type": "runner_server_error"}
RUNNER_FAILED_TYPE = {"error_type": "runner_server_error"}
MODE_NOT_PERMITTED = {
    "loc": ["body", "mode"],
    "msg": "Extra inputs are not permitted",
    "type": "extra_forbidden",
}
CONTENT_POLICY = {
    "detail": [
        {
            "loc": ["body", "image_url"],
            "msg": (
                "The content could not be processed because it was flagged by a content checker."
            ),
            "type": "content_policy_violation",
            "url": "https://docs.fal.ai/errors#content_policy_violation",
        }
    ]
}
LOCKED = {
    "detail": "User is locked. Reason: Exhausted balance. "
    "Top up your balance at fal.ai/dashboard/billing."
}
CANCELLED = {"detail": "Request cancelled by the client", "error_type": "client_cancelled"}
START_TIMEOUT = {
    "detail": "Request timed out before processing started",
    "error_type": "startup_timeout",
}
