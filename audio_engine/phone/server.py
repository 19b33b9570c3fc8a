"""The feed folder over HTTP: only its feed's files, only under the link's token, read only.

Entry points:

- `Server(folder, token, files, host, port, log)`: bound at once to `host` (that address only)
  and `port` (0: any free one); `url(name)` the link of a file, `serve_forever()` until Ctrl-C,
  `close()`.
- `FeedApp(folder, token, files, log)`: the WSGI application it serves (also usable alone).
- `lan_address() -> str | None`: this computer's address on its local network.

The server is waitress (a production WSGI server, pure Python, threads); ranges, conditional
requests and HEAD are werkzeug's (`Response.make_conditional`), see docs/design.md. What is
served: a request's path must be `/<token>/<name>`, the token compared in constant time, and
`<name>` one of `files` exactly (the feed, its picture, the episodes' files): no listings, no
subfolders, no other file of the folder; `..`, `%2e%2e` and every other spelling are simply not
among those names. A name whose file is (or has become) a symlink, or resolves outside the folder,
is not served either. GET and HEAD only (405 otherwise, with `Allow`); everything else is 404.
One line per request goes to `log`, with the token left out.
"""

from __future__ import annotations

import hmac
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from audio_engine.phone.episodes import PhoneError

DEFAULT_PORT = 8478
THREADS = 8  # downloads served at once (a phone fetches the feed, pictures and episodes)
_TYPES = {
    ".mp3": "audio/mpeg",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".xml": "application/rss+xml; charset=utf-8",
    ".png": "image/png",
}
_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
]


class FeedApp:
    """WSGI: `/<token>/<name>` for each name in `files` (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        token: str,
        files: Iterable[str],
        log: Callable[[str], None] | None = None,
    ):
        self.folder = Path(folder).resolve()
        self._token = token.encode("ascii")
        self._log = log
        self.set_files(files)

    def set_files(self, files: Iterable[str]) -> None:
        """The names served from now on (file names in the folder; others are ignored)."""
        self._files = {name: self.folder / name for name in files if "/" not in name}

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        status_holder = []

        def respond(status, headers, exc_info=None):
            status_holder.append((status, headers))
            return start_response(status, headers, exc_info)

        try:
            return self._answer(method, path, environ, respond)
        finally:
            if self._log is not None and status_holder:
                self._log_line(environ, method, path, *status_holder[-1])

    def _answer(self, method: str, path: str, environ, respond):
        if method not in ("GET", "HEAD"):
            return _plain(respond, "405 Method Not Allowed", [("Allow", "GET, HEAD")], method)
        file = self._file_for(path)
        if file is None:
            return _plain(respond, "404 Not Found", [], method)
        try:
            handle = _open_inside(file, self.folder)
        except OSError:
            return _plain(respond, "404 Not Found", [], method)
        return _send(handle, file, environ, respond)

    def _file_for(self, path: str) -> Path | None:
        # PATH_INFO is the path as the server decoded it once, as latin-1 text of its bytes.
        raw = path.encode("latin-1", "replace")
        parts = raw.split(b"/")
        if len(parts) != 3 or parts[0] != b"":
            return None
        if not hmac.compare_digest(parts[1], self._token):
            return None
        try:
            name = parts[2].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return self._files.get(name)

    def _log_line(self, environ, method: str, path: str, status: str, headers) -> None:
        token = self._token.decode("ascii")
        shown = path.replace(token, "<link>") if token in path else path
        shown = quote(shown.encode("latin-1", "replace"), safe="/<>:@!$&'()*+,;=-._~%")
        size = next((v for k, v in headers if k.lower() == "content-length"), "-")
        who = environ.get("REMOTE_ADDR", "-")
        when = datetime.now().strftime("%H:%M:%S")
        self._log(f"{when} {who} {method[:16]!s} {shown} {status.split(' ', 1)[0]} {size}")


def _open_inside(file: Path, folder: Path):
    """The file opened for reading, if it is a regular file inside `folder`, not a symlink."""
    if file.resolve().parent != folder:
        raise OSError("outside the folder")
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _send(handle, file: Path, environ, respond):
    from werkzeug.exceptions import RequestedRangeNotSatisfiable
    from werkzeug.http import parse_range_header
    from werkzeug.wrappers import Response
    from werkzeug.wsgi import wrap_file

    info = os.fstat(handle.fileno())
    header = environ.get("HTTP_RANGE")
    if header is not None:
        unit = header.split("=", 1)[0].strip().lower()
        parsed = parse_range_header(header)
        # A unit other than bytes, or several ranges at once: the whole file (RFC 9110 14.2).
        if unit != "bytes" or (parsed is not None and len(parsed.ranges) > 1):
            environ = {k: v for k, v in environ.items() if k != "HTTP_RANGE"}
        elif parsed is not None and parsed.ranges[0][1] is None:
            start = parsed.ranges[0][0]
            if start < 0 and -start > info.st_size:  # a suffix longer than the file: all of it
                environ = {**environ, "HTTP_RANGE": "bytes=0-"}
    response = Response(
        wrap_file(environ, handle),
        mimetype=None,
        content_type=_TYPES.get(file.suffix, "application/octet-stream"),
        direct_passthrough=True,
    )
    response.headers.extend(_HEADERS)
    response.content_length = info.st_size
    response.last_modified = datetime.fromtimestamp(int(info.st_mtime)).astimezone()
    response.set_etag(f"{info.st_mtime_ns:x}-{info.st_size:x}")
    try:
        response.make_conditional(environ, accept_ranges=True, complete_length=info.st_size)
    except RequestedRangeNotSatisfiable as exc:
        handle.close()
        answer = exc.get_response(environ)
        answer.headers["Content-Range"] = f"bytes */{info.st_size}"
        answer.headers.extend(_HEADERS)
        return answer(environ, respond)
    if response.status_code == 304 or environ.get("REQUEST_METHOD") == "HEAD":
        handle.close()
    return response(environ, respond)


def _plain(respond, status: str, headers, method: str):
    body = (status.split(" ", 1)[1] + "\n").encode()
    respond(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        + headers
        + _HEADERS,
    )
    return [] if method == "HEAD" else [body]


class Server:
    """The feed folder served at `http://host:port/<token>/` (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        token: str,
        files: Iterable[str],
        host: str,
        port: int = DEFAULT_PORT,
        log: Callable[[str], None] | None = None,
    ):
        import logging

        import waitress

        logging.getLogger("waitress").setLevel(logging.ERROR)  # its notes would cut our lines
        self.app = FeedApp(folder, token, files, log)
        self.token = token
        try:
            self._server = waitress.create_server(
                self.app,
                host=host,
                port=port,
                threads=THREADS,
                ident="relax",
                expose_tracebacks=False,
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            raise PhoneError(_bind_error(host, port, exc)) from None
        self.host = host
        self.port = int(self._server.effective_port)

    def url(self, name: str = "") -> str:
        return base_url(self.host, self.port, self.token) + quote(name)

    def serve_forever(self) -> None:
        """Serve until Ctrl-C (raised here as KeyboardInterrupt) or SIGTERM (SystemExit 143).

        waitress's own loop ends quietly on both; the signal is noted and raised again here so
        that the command exits as every relax command does (130, 143)."""
        import signal

        caught: list[int] = []

        def note(signum, frame):
            caught.append(signum)
            raise KeyboardInterrupt

        main_thread = threading.current_thread() is threading.main_thread()
        before = {}
        if main_thread:
            for signum in (signal.SIGINT, signal.SIGTERM):
                before[signum] = signal.signal(signum, note)
        try:
            self._server.run()
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)
        if signal.SIGTERM in caught:
            raise SystemExit(128 + signal.SIGTERM)
        if caught:
            raise KeyboardInterrupt

    def close(self) -> None:
        self._server.close()


def base_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{token}/"


def _bind_error(host: str, port: int, exc: OSError) -> str:
    import errno

    from audio_engine.phone import _

    if exc.errno == errno.EADDRINUSE:
        return _(
            "port {port} on {host} is in use (another relax phone?); choose another with --port N"
        ).format(port=port, host=host)
    if exc.errno == errno.EACCES:
        return _("not allowed to use port {port}; choose one above 1023 with --port N").format(
            port=port
        )
    return _("cannot serve on {host}:{port}: {reason}").format(
        host=host, port=port, reason=exc.strerror or exc
    )


def lan_address() -> str | None:
    """This computer's IPv4 address on its local network, or None when it has none.

    Asks the system which of its addresses it would send from to a private-network address: a
    UDP socket's `connect` only chooses the route, nothing is sent.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    if address.startswith("127.") or address == "0.0.0.0":
        return None
    return address
