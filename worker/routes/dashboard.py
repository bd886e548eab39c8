"""`/__tollgate/dashboard`: the operator's page, behind ADMIN_TOKEN.

- `GET  /__tollgate/dashboard`: the page with a valid session cookie, else the login form.
- `POST /__tollgate/dashboard/login`: form field `token` (ADMIN_TOKEN, compared in
  constant time) -> 303 to the page with the session cookie; never a token in a URL.
- `POST /__tollgate/dashboard/logout`: 303 to the form, the cookie cleared.
- `GET  /__tollgate/dashboard/data`: the page's numbers as JSON, with the cookie or
  `Authorization: Bearer <ADMIN_TOKEN>` (scripts, the tests).

The cookie (src/tollgate/session.py) is HttpOnly (no script reads it), SameSite=Strict
(no other site's page sends it, so no cross-site request can act with it), limited to
this path, Secure over https, and expires after an hour; it is signed with a key derived
from IDENTITY_SECRET and ADMIN_TOKEN, so rotating either logs everyone out.
"""
from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

from src.tollgate import clock
from src.tollgate.session import COOKIE_NAME, SESSION_TTL_S, cookie_value, issue, session_key, valid
from worker.platform import Incoming
from worker.replies import Reply, json_reply, method_not_allowed, not_found, problem_reply
from worker.routes.admin import admin_refusal
from worker.settings import Settings

PREFIX = "/__tollgate/dashboard"        # worker/dashboard_page.py PAGE_PATH
MAX_FORM_BYTES = 4096


def _cookie(value: str, max_age: int, secure: bool) -> tuple[str, str]:
    attrs = f"{COOKIE_NAME}={value}; Max-Age={max_age}; Path={PREFIX}; HttpOnly; SameSite=Strict"
    return ("Set-Cookie", attrs + ("; Secure" if secure else ""))


def _html(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Reply:
    from worker import dashboard_page
    return Reply(status, dashboard_page.HEADERS + (extra or []), text)


def _see_other(extra: list[tuple[str, str]]) -> Reply:
    return Reply(303, [("Location", PREFIX), ("Cache-Control", "no-store")] + extra, b"")


def logged_in(incoming: Incoming, settings: Settings) -> bool:
    """True when the request carries a session cookie this deployment issued and that has not expired."""
    assert settings.admin_token is not None
    key = session_key(settings.identity_secret, settings.admin_token)
    return valid(key, cookie_value(incoming.headers.get("cookie")), clock.now_ms())


async def handle_dashboard(incoming: Incoming, path: str, settings: Settings, env: Any) -> Reply:
    if settings.admin_token is None:
        return problem_reply(403, "Dashboard disabled", "Set the ADMIN_TOKEN secret to enable /__tollgate/dashboard.")
    # Imported here, not at the top: a Worker start and the gateway path never load the page's modules.
    from worker import dashboard_data, dashboard_page
    action = path[len(PREFIX):]
    method = incoming.method
    if action in ("", "/"):
        if method not in ("GET", "HEAD"):
            return method_not_allowed(method, ("GET", "HEAD"))
        if not logged_in(incoming, settings):
            return _html(200, dashboard_page.login_page())
        return _html(200, dashboard_page.dashboard_page(await dashboard_data.gather(env, settings)))
    if action == "/login":
        if method in ("GET", "HEAD"):           # a bookmarked or reloaded login URL: to the page (or its form)
            return _see_other([])
        if method != "POST":
            return method_not_allowed(method, ("GET", "POST"))
        return await _login(incoming, settings)
    if action == "/logout":
        if method != "POST":
            return method_not_allowed(method, ("POST",))
        return _see_other([_cookie("", 0, _secure(incoming))])
    if action == "/data":
        if method not in ("GET", "HEAD"):
            return method_not_allowed(method, ("GET", "HEAD"))
        if not logged_in(incoming, settings):
            refusal = admin_refusal(settings.admin_token, incoming.headers.get("authorization"))
            if refusal is not None:
                return refusal
        return json_reply(200, await dashboard_data.gather(env, settings))
    return not_found(path)


def _secure(incoming: Incoming) -> bool:
    return urlsplit(incoming.url).scheme == "https"


async def _login(incoming: Incoming, settings: Settings) -> Reply:
    from worker import dashboard_page
    assert settings.admin_token is not None
    body = await incoming.body()
    kind = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return _html(400, dashboard_page.login_page("Send the login form (the admin token, at most 4 KB)."))
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=5)
    except (UnicodeDecodeError, ValueError):
        fields = {}
    token = (fields.get("token") or [""])[0]
    if not token or not hmac.compare_digest(token.encode(), settings.admin_token):
        return _html(403, dashboard_page.login_page("That is not the admin token."))
    key = session_key(settings.identity_secret, settings.admin_token)
    return _see_other([_cookie(issue(key, clock.now_ms()), SESSION_TTL_S, _secure(incoming))])
