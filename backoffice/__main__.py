"""`python -m backoffice --port N [--host H]`: the back office, one worker, as `comanda run` starts it."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import List, Optional

from comanda.errors import ConfigError
from comanda.settings import setting, setting_int


def ensure_port_free(host: str, port: int) -> None:
    """Fail with one line now: Sanic would only log a traceback and exit 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise ConfigError(
                f"port {port} (backoffice) is already in use: stop what runs there "
                "or choose another port (COMANDA_BACKOFFICE_PORT)"
            ) from None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backoffice", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=setting("COMANDA_LOG_LEVEL").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        port = args.port or setting_int("COMANDA_BACKOFFICE_PORT")
        ensure_port_free(args.host, port)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    from backoffice.app import create_app

    create_app().run(host=args.host, port=port, workers=1, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
