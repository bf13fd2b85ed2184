"""The local Ray a driver starts when it joins no cluster: on loopback, with token
authentication, its token readable by its owner only.

Ray 2.60 rewrites ``ray.init(_node_ip_address="127.0.0.1")`` to the machine's external
address (``services.resolve_ip_for_localhost``), and its servers bind to loopback only when
the node's address *is* 127.0.0.1; otherwise the GCS, the raylet's node and object managers
and every worker's gRPC server listen on all interfaces (``[::]``) and the runtime-env agent
on the external address.  Ray keeps a loopback node address where it clusters nothing
(``ray_constants.ENABLE_RAY_CLUSTER`` false, its default on macOS and Windows); the driver
sets that constant for the duration of ``ray.init`` only (a later ``--address`` join in the
same process is unaffected), and every listener of the local Ray is then on 127.0.0.1
(measured: tests/study/test_local_ray.py).

Ray turns token authentication on for a new local cluster unless ``RAY_AUTH_MODE`` says
otherwise, and writes a missing token to ``~/.ray/auth_token`` with the process umask
(0644: any local user could read it).  The driver writes that token first, mode 0600, in a
0700 ``~/.ray``; it warns (one line) when authentication is off, and when the token file in
use is readable by other users.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

AUTH_MODE_ENV = "RAY_AUTH_MODE"


def start() -> None:
    """``ray.init`` a local Ray on 127.0.0.1 (see the module docstring)."""
    import ray
    import ray._private.ray_constants as constants

    if auth_disabled():
        print(f"warning: {AUTH_MODE_ENV}=disabled: the local Ray accepts connections without "
              "a token; any process on this machine can reach its ports on 127.0.0.1 and run "
              "code in it (unset it to keep token authentication)", file=sys.stderr)
    else:
        ensure_private_token()
        # Ray notes, at every start, that it picked token mode on its own: keep the console
        # quiet about the default (its warning when auth is off is ours, above).
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR)
    clustering = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False  # keeps the node address 127.0.0.1: Ray binds loopback
    try:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    finally:
        constants.ENABLE_RAY_CLUSTER = clustering


def auth_disabled() -> bool:
    return os.environ.get(AUTH_MODE_ENV, "").strip().lower() == "disabled"


def default_token_path() -> Path:
    """Where Ray looks for its token after ``$RAY_AUTH_TOKEN`` and ``$RAY_AUTH_TOKEN_PATH``."""
    return Path.home() / ".ray" / "auth_token"


def ensure_private_token() -> Path | None:
    """Write Ray's missing token file with mode 0600 (before Ray writes it world-readable);
    warn when the token file in use is readable by others.  The path written, or None."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return None
    given = os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip()
    path = Path(given).expanduser() if given else default_token_path()
    if path.is_file():
        _warn_if_shared(path)
        return None
    if given:  # Ray reads that file or fails with its own message; it never writes it
        return None
    from ray._private.authentication.authentication_token_generator import (
        generate_new_authentication_token,
    )

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it just now
        return None
    with os.fdopen(fd, "w") as out:
        out.write(generate_new_authentication_token())
    return path


def _warn_if_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: Ray's token file {path} is readable by other users (mode "
              f"{mode:04o}); chmod 600 {path}", file=sys.stderr)
