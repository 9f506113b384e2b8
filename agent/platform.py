"""The agent's side of the platform protocol (DESIGN.md §5), over ``requests``."""

from __future__ import annotations

import requests

from . import __version__


class PlatformError(Exception):
    """The platform refused a request; retrying the same request will not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlatformUnavailable(PlatformError):
    """Network error, 5xx or 429: back off and retry."""


class Unauthorized(PlatformError):
    """The key is unknown or revoked."""


class PlatformClient:
    def __init__(self, url: str, api_key: str, *, timeout: float = 15.0, session: requests.Session | None = None):
        self.base = url.rstrip("/") + "/api/v1/agent"
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Authorization": f"Api-Key {api_key}", "User-Agent": f"spotopt-agent/{__version__}"}
        )

    def _request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:
            raise Unauthorized("the platform rejected the API key", 401)
        if response.status_code == 429 or response.status_code >= 500:
            raise PlatformUnavailable(f"HTTP {response.status_code}", response.status_code)
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise PlatformError(f"HTTP {response.status_code}: {message}", response.status_code)
        return response.json()

    def snapshot(self, body: dict) -> dict:
        return self._request("POST", "/snapshot", json=body)

    def lease(self, max_actions: int) -> list[dict]:
        return self._request("GET", "/actions", params={"max": max_actions})["actions"]

    def report(self, action_id: int, status: str, message: str, output: dict | None = None) -> dict:
        body: dict = {"status": status, "message": message}
        if output is not None:
            body["output"] = output
        return self._request("POST", f"/actions/{action_id}/result", json=body)

    def events(self, events: list[dict]) -> dict:
        return self._request("POST", "/events", json={"events": events})
