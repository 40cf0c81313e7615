"""A second process for the graph tests: runs one scripted turn and reports on stdout.

    python tests/graphs/turn_child.py DATA_DIR SESSION_ID MODE [CHECKPOINT_URL]

MODE `answer`: run_sql, then an answer; prints the question and the collected turn as JSON.
MODE `hang`: run_sql, then the model hangs; prints TOOL_DONE once the tool step has ended,
so the parent can kill this process between steps.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from scripted_model import ScriptedChatModel, call, reply

from graphs.turns import Turn, collect
from server.agent_runtime import open_runner
from server.resources import build_resources
from server.settings import Settings

QUESTION = "How many customers are in Germany?"
SQL = "SELECT COUNT(*) AS customers FROM customers WHERE country = 'Germany'"
ANSWER = "There are 167 customers in Germany."
HANG_S = 60.0


def script(model: ScriptedChatModel, mode: str) -> list[Any]:
    """The model's replies for a mode."""
    first = reply("", call("run_sql", sql=SQL))
    if mode == "answer":
        return [first, reply(ANSWER)]

    def then_hang(messages: list[Any]) -> Any:
        # The next call sleeps on the event loop (asyncio.sleep), not in time.sleep: a blocked
        # loop would also hold back the checkpoint of the tool step, which LangGraph writes
        # while the next step runs.
        model.delay_s = HANG_S
        return first

    return [then_hang, reply("too late")]


async def main(data_dir: Path, session_id: str, mode: str, checkpoint_url: str | None) -> None:
    """Run the turn and print what the parent waits for."""
    model = ScriptedChatModel()
    model.script = script(model, mode)
    resources = build_resources(Settings(data_dir=data_dir))
    async with open_runner(
        resources, model_factory=lambda spec: model, checkpoint_url=checkpoint_url
    ) as runner:
        events = []
        async for event in runner.stream(Turn(QUESTION, session_id=session_id)):
            events.append(event)
            data = event.data
            if event.event == "step" and data["name"] == "run_sql" and data["status"] == "end":
                print("TOOL_DONE", flush=True)
    print(json.dumps({"question": QUESTION, **collect(events)}), flush=True)


if __name__ == "__main__":
    url = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], url))
