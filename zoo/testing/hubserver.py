"""A small Hugging Face Hub-compatible HTTP server, for tests (the zoo's and a plugin's) and trials.

The Hub cannot be reached from the test machines, so the tests point
`HF_ENDPOINT` at this server on 127.0.0.1 and talk to it through the real
`huggingface_hub` client. It implements exactly the endpoints that client
(version 2.x) calls for what the zoo does, read from its source:

    POST   /api/repos/create                         create_repo (409 still carries "url")
    POST   /api/validate-yaml                        create_commit checks README.md front matter
    POST   /api/models/{repo}/preupload/{rev}        answers uploadMode "regular" (no LFS, no Xet)
    POST   /api/models/{repo}/commit/{rev}           ndjson: header, file, deletedFile, deletedFolder
    POST   /api/models/{repo}/tag/{rev}              create_tag (409 when the tag exists)
    DELETE /api/models/{repo}/tag/{tag}
    POST   /api/models/{repo}/branch/{branch}        create_branch (startingPoint)
    GET    /api/models/{repo}/refs                   list_repo_refs
    GET    /api/models/{repo}[/revision/{rev}]       model_info / repo_info
    GET    /api/models/{repo}/tree/{rev}             list_repo_tree / list_repo_files
    HEAD   /{repo}/resolve/{rev}/{path}              X-Repo-Commit, ETag, Content-Length
    GET    /{repo}/resolve/{rev}/{path}              the bytes (Range "bytes=N-" supported)

Errors carry `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound)
as the Hub does, so the client raises its own typed errors. Files are kept in
memory as git-like commits (each commit is a full snapshot); `tamper()`
changes a stored file behind the client's back, as a corrupt mirror would.
`faults` makes the network misbehave: `faults["model.safetensors"] = "drop"`
sends half of that file's body and closes the connection (every GET of it);
`faults["*"] = "hang"` accepts every request and never answers (until stop()).

    with HubServer(token="hf_test") as hub:
        os.environ["HF_ENDPOINT"] = hub.url

From the shell, a throwaway Hub to try `zoo publish` against (it forgets everything when stopped):

    python -m zoo.testing.hubserver --token hf_local --port 8999   # prints export HF_ENDPOINT=...
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

__all__ = ["HubServer", "git_blob_sha1"]


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports for files that are not in LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    files: dict[str, bytes]  # path -> content: a full snapshot
    message: str
    parent: str | None


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    tags: dict[str, str] = field(default_factory=dict)  # name -> commit oid

    def resolve(self, revision: str) -> str | None:
        """A branch, a tag or a full commit oid -> the commit oid, or None."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if revision in self.commits:
            return revision
        return None


class HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, extra: dict | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.extra = extra or {}
        self.headers = headers or {}


class HubServer:
    """A threaded Hub on 127.0.0.1. `token` is required for writes and for private repos."""

    def __init__(self, token: str = "hf_test_token", user: str = "tester", port: int = 0):
        self.token = token
        self.port = port  # 0: any free port
        self.user = user
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization header)
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._connections: set = set()  # open client sockets, closed by stop() so keep-alive cannot outlive it
        self._thread: threading.Thread | None = None
        self.faults: dict[str, str] = {}  # file path (or "*": every request) -> "drop" or "hang"
        self._stopped = threading.Event()  # releases hanging requests

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for conn in list(self._connections):  # a stopped hub must look down to pooled connections too
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass
        self._connections.clear()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address
        return f"http://{host}:{port}"

    # -- test helpers -------------------------------------------------------
    def tamper(self, repo_id: str, path: str, content: bytes, revision: str = "main") -> None:
        """Replace a stored file in place, without a new commit (a corrupt or malicious mirror)."""
        with self.lock:
            repo = self.repos[repo_id]
            repo.commits[self._oid(repo, revision)].files[path] = content

    def file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        repo = self.repos[repo_id]
        return repo.commits[self._oid(repo, revision)].files[path]

    @staticmethod
    def _oid(repo: Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise KeyError(f"no revision {revision!r}")
        return oid

    # -- repository model ---------------------------------------------------
    def _new_commit(self, repo: Repo, files: dict[str, bytes], message: str, parent: str | None) -> str:
        oid = hashlib.sha1(f"{repo.repo_id}{message}{uuid.uuid4()}{time.time()}".encode()).hexdigest()
        repo.commits[oid] = Commit(oid, files, message, parent)
        return oid

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(repo_id, private)
        oid = self._new_commit(
            repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}, "initial commit", None
        )
        repo.branches["main"] = oid
        self.repos[repo_id] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer  # set by HubServer.start

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.hub._connections.add(self.connection)

    def finish(self) -> None:
        self.hub._connections.discard(self.connection)
        super().finish()

    # -- plumbing -----------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        self.hub.requests.append((self.command, path, self.headers.get("Authorization")))
        if self.hub.faults.get("*") == "hang":
            self.hub._stopped.wait()
            self.close_connection = True
            return
        try:
            with self.hub.lock:
                self._route(path, query)
        except HubError as e:
            headers = dict(e.headers)
            if e.code:
                headers["X-Error-Code"] = e.code
            headers["X-Error-Message"] = e.message
            self._json(e.status, {"error": e.message, **e.extra}, headers)

    do_GET = do_HEAD = do_POST = do_DELETE = lambda self: self._dispatch()  # noqa: E731

    # -- routing ------------------------------------------------------------
    def _repo(self, repo_id: str, *, write: bool = False) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            raise HubError(404 if self._authorized() else 401, "Repository not found", "RepoNotFound")
        if write and not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _route(self, path: str, query: dict) -> None:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        m = self.command
        if parts[:1] == ["api"]:
            return self._api(parts[1:], query)
        # /{org}/{name}/resolve/{rev}/{path...}
        if len(parts) >= 5 and parts[2] == "resolve" and m in ("GET", "HEAD"):
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        raise HubError(404, f"no route for {m} {path}")

    def _api(self, parts: list[str], query: dict) -> None:
        m = self.command
        if parts == ["repos", "create"] and m == "POST":
            return self._create_repo()
        if parts == ["validate-yaml"] and m == "POST":
            return self._validate_yaml()
        if parts == ["whoami-v2"] and m == "GET":
            if not self._authorized():
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json(200, {"type": "user", "name": self.hub.user, "orgs": []})
        if len(parts) < 3 or parts[0] != "models":
            raise HubError(404, f"no route for {m} /api/{'/'.join(parts)}")
        repo_id, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        if not rest and m == "GET":
            return self._info(repo_id, "main")
        if rest[:1] == ["revision"] and len(rest) == 2 and m == "GET":
            return self._info(repo_id, rest[1])
        if rest[:1] == ["refs"] and m == "GET":
            return self._refs(repo_id)
        if rest[:1] == ["tree"] and len(rest) >= 2 and m == "GET":
            return self._tree(repo_id, rest[1], "/".join(rest[2:]))
        if rest[:1] == ["preupload"] and len(rest) == 2 and m == "POST":
            return self._preupload(repo_id, rest[1])
        if rest[:1] == ["commit"] and len(rest) == 2 and m == "POST":
            return self._commit_files(repo_id, rest[1])
        if rest[:1] == ["tag"] and len(rest) == 2 and m == "POST":
            return self._create_tag(repo_id, rest[1])
        if rest[:1] == ["tag"] and len(rest) == 2 and m == "DELETE":
            return self._delete_tag(repo_id, rest[1])
        if rest[:1] == ["branch"] and len(rest) == 2 and m == "POST":
            return self._create_branch(repo_id, rest[1])
        raise HubError(404, f"no route for {m} /api/{'/'.join(parts)}")

    # -- endpoints ------------------------------------------------------------
    def _create_repo(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        if payload.get("type", "model") != "model":
            raise HubError(400, "this test hub only hosts model repos")
        org = payload.get("organization") or self.hub.user
        repo_id = f"{org}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            raise HubError(409, "You already created this model repo", extra={"url": url})
        self.hub.create_repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        errors = []
        if content.startswith("---"):
            end = content.find("\n---", 3)
            if end < 0:
                errors.append({"message": "unterminated YAML front matter"})
            else:
                try:
                    meta = yaml.safe_load(content[3:end])
                    if meta is not None and not isinstance(meta, dict):
                        errors.append({"message": "front matter is not a mapping"})
                except yaml.YAMLError as e:
                    errors.append({"message": f"invalid YAML: {e}"})
        if errors:
            return self._json(400, {"errors": errors, "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id)
        commit = self._commit(repo, revision)
        self._json(
            200,
            {
                "id": repo_id,
                "_id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.oid,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "tags": sorted(repo.tags),
                "library_name": "zoo",
                "siblings": [{"rfilename": p} for p in sorted(commit.files)],
            },
        )

    def _refs(self, repo_id: str) -> None:
        repo = self._repo(repo_id)
        self._json(
            200,
            {
                "branches": [
                    {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(repo.branches.items())
                ],
                "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in sorted(repo.tags.items())],
                "converts": [],
                "pullRequests": [],
            },
        )

    def _tree(self, repo_id: str, revision: str, prefix: str) -> None:
        commit = self._commit(self._repo(repo_id), revision)
        prefix = prefix.strip("/")
        entries = [
            {"type": "file", "path": p, "size": len(data), "oid": git_blob_sha1(data)}
            for p, data in sorted(commit.files.items())
            if not prefix or p.startswith(prefix + "/")
        ]
        self._json(200, entries)

    def _preupload(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, write=True)
        oid = repo.resolve(revision)
        files = repo.commits[oid].files if oid else {}
        payload = json.loads(self._body() or b"{}")
        out = []
        for f in payload.get("files", []):
            existing = files.get(f["path"])
            out.append(
                {
                    "path": f["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(existing) if existing is not None else None,
                }
            )
        self._json(200, {"files": out, "commitOid": oid})

    def _commit_files(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, write=True)
        head = repo.branches.get(revision)
        if head is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, head):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.commits[head].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(folder)}
            elif key == "lfsFile":
                raise HubError(400, "this test hub answered uploadMode 'regular'; LFS pointers are not accepted")
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        oid = self.hub._new_commit(repo, files, header.get("summary", ""), head)
        repo.branches[revision] = oid
        self._json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{repo_id}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": None,
                "success": True,
            },
        )

    def _create_tag(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, write=True)
        oid = self._commit(repo, revision).oid
        tag = json.loads(self._body() or b"{}")["tag"]
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = oid
        self._json(200, {})

    def _delete_tag(self, repo_id: str, tag: str) -> None:
        repo = self._repo(repo_id, write=True)
        if repo.tags.pop(tag, None) is None:
            raise HubError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
        self._json(200, {})

    def _create_branch(self, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_id, write=True)
        start = json.loads(self._body() or b"{}").get("startingPoint") or "main"
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        repo.branches[branch] = self._commit(repo, start).oid
        self._json(200, {})

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_id)
        commit = self._commit(repo, revision)
        data = commit.files.get(path)
        if data is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_sha1(data)}"', "Accept-Ranges": "bytes"}
        if self.hub.faults.get(path) == "drop" and self.command == "GET":
            return self._drop(data, headers)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and self.command == "GET":
            start = int(rng[len("bytes=") :].split("-")[0] or 0)
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return self._send(206, data[start:], headers, "application/octet-stream")
        self._send(200, data, headers, "application/octet-stream")

    def _drop(self, data: bytes, headers: dict) -> None:
        """Promise the whole file, send half of it, close the connection (a transfer cut mid-body)."""
        self.send_response(200)
        for k, v in {**headers, "Content-Type": "application/octet-stream", "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


if __name__ == "__main__":  # a throwaway in-memory Hub for trying `zoo publish` by hand
    import argparse
    import os

    parser = argparse.ArgumentParser(
        description="Serve an in-memory Hub-compatible API on 127.0.0.1 (for tests and demos)."
    )
    parser.add_argument("--token", default=os.environ.get("HF_TOKEN", "hf_test_token"), help="the token that may write")
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: any free one)")
    args = parser.parse_args()
    with HubServer(token=args.token, port=args.port) as hub:
        print(f"export HF_ENDPOINT={hub.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
