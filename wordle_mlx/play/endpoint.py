"""OpenAI-compatible chat-completions endpoints: evaluate a served model, or use one as a teacher.

`ChatClient` posts `{"model", "messages", "max_tokens", "temperature"}` to `<base>/v1/chat/completions`
(local `mlx_lm.server`, vLLM, llama.cpp's server, or a hosted API) with only the standard library:

* bounded concurrency: `complete_many` sends at most `concurrency` requests at once (threads);
* retries with exponential backoff (`backoff * 2**attempt`, or the server's `Retry-After`) on 429,
  5xx, timeouts and refused/reset connections, at most `retries` times per request;
* a per-request timeout; other 4xx (bad key, unknown model, bad request) fail at once.

Anything that still fails raises `EndpointError` with one line (URL, status, the server's message).
A response that breaks the answer format is not an error: it is returned as text and scored as an
invalid guess by the caller, exactly like a local model's.

`EndpointPolicy` is a Wordle policy (`guess_batch`) for `wordle_mlx.play.evaluate`: the messages are the
trainer's (`prompts.build_messages`, the same system prompt, state rendering and not-accepted list).

API keys come from an environment variable whose *name* the caller gives (`--api-key-env VAR`);
the key itself is only ever put in the Authorization header, never in reports, logs or configs.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from wordle_mlx.play import prompts
from wordle_mlx.wordle.game import Turn
from wordle_mlx.wordle.solvers import Policy

RETRY_STATUS = (408, 409, 425, 429, 500, 502, 503, 504)


class EndpointError(RuntimeError):
    """An endpoint that cannot be used (one line)."""


def chat_url(base: str) -> str:
    """`http://host:8080`, `.../v1` or the full `.../v1/chat/completions` -> the completions URL."""
    url = base.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise EndpointError(f"endpoint {base!r}: expected an http:// or https:// URL")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


def api_key_from_env(var: str | None) -> str | None:
    """The key in environment variable `var` (None when no variable is named)."""
    if not var:
        return None
    key = os.environ.get(var)
    if not key:
        raise EndpointError(f"--api-key-env {var}: the environment variable is not set")
    return key


class ChatClient:
    """A chat-completions client with retries, backoff, a timeout and bounded concurrency."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 1.0, concurrency: int = 4):
        self.url, self.model = chat_url(url), model
        self._api_key = api_key
        self.timeout, self.retries, self.backoff, self.concurrency = timeout, retries, backoff, max(1, concurrency)
        self.requests = 0
        self.retried = 0

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient({self.url!r}, model={self.model!r})"

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode() or "{}")

    def complete(self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.0) -> str:
        """The assistant text for `messages` (retrying transient failures)."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        last = ""
        for attempt in range(self.retries + 1):
            self.requests += 1
            wait = self.backoff * 2**attempt * (1 + 0.1 * random.random())
            try:
                data = self._post(body)
                choice = (data.get("choices") or [{}])[0]
                content = (choice.get("message") or {}).get("content")
                if content is None:
                    content = choice.get("text", "")
                return content or ""
            except urllib.error.HTTPError as err:
                message = _error_message(err)
                last = f"HTTP {err.code}: {message}"
                if err.code not in RETRY_STATUS:
                    raise EndpointError(f"endpoint {self.url} (model {self.model!r}): {last}") from None
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                reason = getattr(err, "reason", err)
                last = f"timed out after {self.timeout:g} s" if isinstance(reason, TimeoutError) or "timed out" in str(
                    reason) else f"cannot connect ({reason})"
            except ValueError:
                last = "the response is not JSON"
            if attempt < self.retries:
                self.retried += 1
                time.sleep(wait)
        raise EndpointError(f"endpoint {self.url} (model {self.model!r}): {last} "
                            f"(after {self.retries + 1} attempts)")

    def complete_many(self, conversations: Sequence[list[dict]], max_tokens: int = 256,
                      temperature: float = 0.0) -> list[str]:
        """Answers for many conversations, at most `concurrency` requests in flight, in order."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            futures = [pool.submit(self.complete, m, max_tokens, temperature) for m in conversations]
            return [f.result() for f in futures]


def _error_message(err: urllib.error.HTTPError) -> str:
    try:
        text = err.read().decode(errors="replace")
    except Exception:  # noqa: BLE001
        text = ""
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            inner = data.get("error", data)
            text = inner.get("message", str(inner)) if isinstance(inner, dict) else str(inner)
    except ValueError:
        pass
    text = " ".join(text.split())[:200]
    return text or (err.reason if isinstance(err.reason, str) else "error")


class EndpointPolicy(Policy):
    """A served model as a Wordle policy: the trainer's prompts, one request per game per round."""

    name = "endpoint"
    sees_rejected = True

    def __init__(self, client: ChatClient, fmt: str = "plain", temperature: float = 0.0, max_tokens: int = 256,
                 label: str | None = None, think: bool = True):
        self.client, self.fmt, self.temperature, self.max_tokens = client, fmt, temperature, max_tokens
        self.label = label or client.model
        self.think = think
        self.last_completions: list[str] = []
        self.last_parsed: list[prompts.Parsed] = []

    def guess_batch(self, histories: Sequence[Sequence[Turn]], rejected: Sequence[Sequence[str]] | None = None) -> list[str]:
        rejected = rejected or [()] * len(histories)
        conversations = [prompts.build_messages(h, self.fmt, rejected=r) for h, r in zip(histories, rejected)]
        self.last_completions = self.client.complete_many(conversations, self.max_tokens, self.temperature)
        self.last_parsed = [prompts.parse_completion(t, strict=True, think=self.think) for t in self.last_completions]
        return [p.attempt for p in self.last_parsed]

    def describe(self) -> dict:
        return {"name": self.label, "endpoint": self.client.url, "model": self.client.model, "format": self.fmt,
                "temperature": self.temperature, "think": self.think}
