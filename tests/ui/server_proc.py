"""The sqlsage HTTP server in a process of its own, for the browser test that stops the server
mid-stream and starts it again on the same port (a thread cannot be signalled like a server).

    python -m tests.ui.server_proc --data-dir DIR [--port 0] [--delay 1.0]

Serves create_app on 127.0.0.1 with the tests' scripted model (InstantModel, each reply after
--delay seconds) and rate limits too high to bite. Prints `LISTENING <port>` once uvicorn
accepts connections; on SIGTERM uvicorn closes the streams and lets running turns finish.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path


def main() -> None:
    """Parse flags, bind 127.0.0.1:PORT, serve until signalled."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    import uvicorn

    from server.http import create_app
    from server.settings import Settings
    from tests.server.instant_model import InstantModel

    settings = Settings(
        data_dir=args.data_dir,
        knowledge_dir=args.data_dir / "knowledge",
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
    )
    model = InstantModel(delay_s=args.delay)
    app = create_app(settings, model_factory=lambda spec: model)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.02)
        print(f"LISTENING {sock.getsockname()[1]}", flush=True)
        await task

    started = time.monotonic()
    asyncio.run(serve())
    print(f"STOPPED after {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
