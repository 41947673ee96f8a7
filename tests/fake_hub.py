"""A Hugging Face Hub on 127.0.0.1 that speaks the routes huggingface_hub 2.4 uses to download.

- `HEAD|GET /{repo}/resolve/{revision}/{file}`: small files answer 200 with `X-Repo-Commit`, a git
  `ETag` and `Content-Length`; LFS files answer 302 to a second server (another origin, like the
  hub's CDN) with `X-Repo-Commit`, `X-Linked-Etag` (the sha256) and `X-Linked-Size`.
- `GET /cdn/{sha256}` on the CDN server: the bytes, with `Range` → 206 for resumed downloads.
- `GET /api/models/{repo}/revision/{revision}`: the model info (`sha`, `siblings` with sizes).
- Unknown repos, revisions and files answer 404 with the hub's `X-Error-Code`.

A file can misbehave: `drop_first=N` closes the first transfer (the first `drops`) after N bytes (a
dropped connection: the client resumes with `Range`), `short=N` always sends only N bytes (consistent
headers, like a truncated object on a CDN), `body=...` serves other bytes than the listing's.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True
    drop_first: int | None = None  # close the first GET (the first `drops` GETs) after this many bytes
    drops: int = 1
    short: int | None = None  # every GET sends only this many bytes (headers say so too)
    body: bytes | None = None  # served instead of `data` (the listing and HEAD still describe `data`)
    gets: int = 0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_sha(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class HubRepo:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class FakeHub:
    """Start with `with FakeHub() as hub:`; `hub.endpoint` is what HF_ENDPOINT should be."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), self._handler(cdn)) for cdn in (False, True)]
        self.endpoint = f"http://127.0.0.1:{self._servers[0].server_port}"
        self.cdn = f"http://127.0.0.1:{self._servers[1].server_port}"

    def add(self, repo_id: str, commit: str, files: dict[str, HubFile]) -> HubRepo:
        self.repos[repo_id] = HubRepo(commit, dict(files))
        return self.repos[repo_id]

    def __enter__(self) -> "FakeHub":
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _by_sha(self, sha: str) -> HubFile | None:
        return next((f for r in self.repos.values() for f in r.files.values() if f.sha256 == sha), None)

    def _handler(self, cdn: bool):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _error(self, code: int, error_code: str) -> None:
                self.send_response(code)
                self.send_header("X-Error-Code", error_code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                if cdn:
                    m = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
                    f = hub._by_sha(m[1]) if m else None
                    return self._send_bytes(f, head) if f else self._error(404, "EntryNotFound")
                m = re.fullmatch(r"/api/models/(.+?)/revision/([^/]+)", path)
                if m and not head:
                    return self._model_info(m[1], m[2])
                m = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
                if not m:
                    return self._error(404, "EntryNotFound")
                repo, revision, name = m.groups()
                found = self._lookup(repo, revision)
                if found is None:
                    return
                f = found.files.get(name)
                if f is None:
                    return self._error(404, "EntryNotFound")
                if f.lfs:
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn}/cdn/{f.sha256}")
                    self.send_header("X-Repo-Commit", found.commit)
                    self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                    self.send_header("X-Linked-Size", str(len(f.data)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._send_bytes(f, head, commit=found.commit)

            def _lookup(self, repo: str, revision: str) -> HubRepo | None:
                found = hub.repos.get(repo)
                if found is None:
                    self._error(404, "RepoNotFound")
                    return None
                if revision not in (found.commit, "main"):
                    self._error(404, "RevisionNotFound")
                    return None
                return found

            def _model_info(self, repo: str, revision: str) -> None:
                found = self._lookup(repo, revision)
                if found is None:
                    return
                siblings = [{"rfilename": n, "size": len(f.data), "blobId": f.git_sha,
                             **({"lfs": {"sha256": f.sha256, "size": len(f.data), "pointerSize": 134}}
                                if f.lfs else {})}
                            for n, f in found.files.items()]
                body = json.dumps({"id": repo, "modelId": repo, "sha": found.commit, "private": False,
                                   "siblings": siblings}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_bytes(self, f: HubFile, head: bool, commit: str | None = None) -> None:
                data = f.body if f.body is not None else f.data
                if f.short is not None:
                    data = data[: f.short]
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m and not head:
                    start = int(m[1])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if commit:
                    self.send_header("X-Repo-Commit", commit)
                    self.send_header("ETag", f'"{f.git_sha}"')
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if head:
                    return
                f.gets += 1
                chunk = data[start:]
                if f.drop_first is not None and f.gets <= f.drops:
                    self.wfile.write(chunk[: f.drop_first])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(chunk)

        return Handler
