"""A child process with the network blocked, no weights/examples source and an empty HOME.

``offline`` (a fixture; import it into a test module) gives environment overrides for child
processes: a ``sitecustomize.py`` first on ``PYTHONPATH`` refuses any connection or name lookup
beyond the loopback interface and writes each attempt to a log file; ``HTTP(S)_PROXY`` points at
a closed local port (9) that counts as "outside" too. At the end of the test the fixture fails
it if the log holds a line (even where the child caught the error and carried on) or if anything
was written to the per-user cache. ``child_env(offline)`` is ``os.environ`` with the overrides.
Used by test_offline and test_package.
"""

from __future__ import annotations

import os
import site
import textwrap

import pytest

GUARD = textwrap.dedent('''
    """Test guard: no connection or name lookup beyond loopback; each attempt is logged."""
    import ipaddress, os, socket, sys, traceback

    _LOG = os.environ["OFFLINE_GUARD_LOG"]
    _BLOCKED_PORT = 9  # HTTP(S)_PROXY points here: a request sent to the proxy is a network attempt


    def _local(host):
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False


    def _refuse(what):
        with open(_LOG, "a") as f:
            f.write(f"{what} (pid {os.getpid()}, {sys.argv[0]})\\n")
            f.write("".join(traceback.format_stack(limit=12)) + "\\n")
        raise OSError(f"network blocked by the test: {what}")


    def _check(address):
        if isinstance(address, tuple) and len(address) >= 2:
            if not _local(address[0]) or address[1] == _BLOCKED_PORT:
                _refuse(f"connect to {address[0]}:{address[1]}")


    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
    _create_connection, _getaddrinfo = socket.create_connection, socket.getaddrinfo


    def connect(self, address):
        _check(address)
        return _connect(self, address)


    def connect_ex(self, address):
        _check(address)
        return _connect_ex(self, address)


    def create_connection(address, *args, **kwargs):
        _check(address)
        return _create_connection(address, *args, **kwargs)


    def getaddrinfo(host, *args, **kwargs):
        if not _local(host.decode() if isinstance(host, bytes) else host):
            _refuse(f"name lookup of {host}")
        return _getaddrinfo(host, *args, **kwargs)


    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
''')


@pytest.fixture
def offline(tmp_path) -> dict:
    """Environment overrides for a child process: network blocked, no weights/examples source,
    empty HOME and per-user cache. ``offline["_log"]`` is the attempts log (a Path)."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "network-attempts.log"
    env = {
        "PYTHONPATH": os.pathsep.join([str(guard)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        "PYTHONUSERBASE": site.getuserbase(),  # a temporary HOME must not hide user-installed packages
        "OFFLINE_GUARD_LOG": str(log),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": None, "SEGMENTATION_WEIGHTS": None, "SEGMENTATION_EXAMPLES_SOURCE": None,
        "SEGMENTATION_EXAMPLES_DOWNLOAD": None,
    }
    yield {**env, "_log": log, "_home": home}
    attempts = log.read_text() if log.exists() else ""
    assert not attempts, f"something tried to reach the network:\n{attempts}"
    made = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert not [p for p in made if "segmentation" in p], f"written to the per-user cache: {made}"


def child_env(offline: dict) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in offline.items():
        if k.startswith("_"):
            continue
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env
