"""A signed-in person using the pages through the Flask test client: real forms, real CSRF."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Reader:
    def __init__(self, app, language: str = "en"):
        self.client = app.test_client()
        self.headers = {"Accept-Language": language}

    def get(self, path: str, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def token(self, path: str) -> str:
        page = self.get(path)
        found = TOKEN.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {path} ({page.status_code})"
        return found.group(1)

    def submit(
        self,
        path: str,
        data: dict | None = None,
        form_on: str | None = None,
        csrf_field: str = "csrf_token",
        **kw,
    ):
        """Post a form the way a browser does: with the CSRF token of the page it sits on."""
        body = {csrf_field: self.token(form_on or path), **(data or {})}
        return self.client.post(path, data=body, headers=self.headers, **kw)

    def login(self, username: str, password: str = PASSWORD) -> Reader:
        response = self.submit("/login", {"username": username, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return self


def text(response) -> str:
    return response.get_data(as_text=True)


def field_error(response, field: str) -> str:
    """The error shown next to a field (the span the field's aria-describedby points at)."""
    found = re.search(rf'<span class="error" id="{field}-error">([^<]*)</span>', text(response))
    return found.group(1) if found else ""
