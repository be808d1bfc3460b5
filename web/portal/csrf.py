"""CSRF protection for the portal: one random token per browser session.

Every form carries it in a hidden ``csrf_token`` field; scripts send it in the ``X-CSRF-Token``
header. A state-changing request without the session's token is refused with 400 before the view
runs. The token lives in the signed session cookie, so another site can neither read nor forge it.
"""

from __future__ import annotations

import secrets

from flask import abort, request, session
from markupsafe import Markup, escape

# The same session key and header as the REST API's session sign-in (web.auth), so a page's
# token also works for the API.
from web.auth import CSRF_HEADER as HEADER
from web.auth import SAFE_METHODS, csrf_matches
from web.auth import SESSION_CSRF_KEY as SESSION_KEY

FORM_FIELD = "csrf_token"


def csrf_token() -> str:
    """The session's token, made on first use."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field() -> Markup:
    """The hidden form field, for templates: ``{{ csrf_field() }}``."""
    return Markup(f'<input type="hidden" name="{FORM_FIELD}" value="{escape(csrf_token())}">')


def check_csrf() -> None:
    """``before_request`` hook: refuse an unsafe request without the session's token (400)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if sent is None:
        # Reading the form parses the body; a too-large upload stops here with 413.
        sent = request.form.get(FORM_FIELD)
    if not csrf_matches(sent):
        abort(400, description="The form has expired or did not come from this site. "
                               "Reload the page and try again.")
