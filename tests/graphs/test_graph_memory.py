"""Sessions remember: follow-ups reuse the previous turn, a killed process's turn is resumed
from its checkpoint, and a second process continues a session kept in PostgreSQL."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import pytest
from service_dbs import HOST, PG_PORT, postgres_available, require_or_skip

from graphs.events import Event
from graphs.state import guards, outcome
from graphs.turns import Turn, collect
from memory.checkpointer import delete_thread, open_checkpointer
from memory.sessions import SessionStore
from server.agent_runtime import open_runner
from server.resources import Resources, build_resources
from server.settings import Settings
from tools.errors import SqlsageError

from .conftest import copy_data_dir
from .runs import (
    ask,
    checkpoint_state,
    of_type,
    resume,
    run,
    shape,
    tool_results,
    tool_steps,
    transcript,
)
from .scripted_model import ScriptedChatModel, call, reply

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("turn_child.py")
PG_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/test"
GERMANY = "SELECT COUNT(*) AS customers FROM customers WHERE country = 'Germany'"
FRANCE = "SELECT COUNT(*) AS customers FROM customers WHERE country = 'France'"
REVENUE = re.compile(r"SUM\(.+?\) AS revenue")


# ---- follow-ups --------------------------------------------------------------------------
def test_builtin_follow_ups_reuse_the_revenue_query_and_its_result(resources: Resources) -> None:
    session_id = uuid.uuid4().hex

    async def scenario() -> list[list[Event]]:
        async with open_runner(resources) as runner:  # the default model: builtin
            return [
                await ask(runner, question, session_id=session_id)
                for question in (
                    "What was the total revenue by year?",
                    "and only for 2023?",
                    "show that as a line chart",
                )
            ]

    first, second, third = run(scenario())
    for number, events in enumerate((first, second, third), start=1):
        assert {(e.session_id, e.turn) for e in events} == {(session_id, number)}
        assert events[-1].data["status"] == "answered"

    by_year = of_type(first, "table")[0].data["rows"]
    assert [row[0] for row in by_year] == ["2022", "2023", "2024"]
    first_sql, second_sql = first[-1].data["sql"], second[-1].data["sql"]
    revenue = REVENUE.search(first_sql)
    assert revenue is not None
    assert revenue.group(0) in second_sql
    assert ">= '2023-01-01'" in second_sql and "< '2024-01-01'" in second_sql
    assert of_type(second, "table")[0].data["rows"] == [by_year[1]]

    assert tool_steps(third) == ["build_chart"]
    assert of_type(third, "sql") == [] and of_type(third, "table") == []
    [chart] = of_type(third, "chart")
    assert chart.data["type"] == "line" and chart.data["spec"]["mark"]["type"] == "line"
    # The chart is of the previous turn's result (2023 only), read back from the results store;
    # the year becomes a date on the time axis.
    assert [v["year"] for v in chart.data["spec"]["data"]["values"]] == ["2023-01-01"]


def test_second_turn_sends_the_first_question_and_answer(resources: Resources) -> None:
    answer = "There are 167 customers in Germany."
    model = ScriptedChatModel(
        script=[
            reply("", call("run_sql", sql=GERMANY)),
            reply(answer),
            reply("", call("run_sql", sql=FRANCE)),
            reply("France has its own count in the table."),
        ]
    )
    session_id = uuid.uuid4().hex

    async def scenario() -> tuple[list[Event], list[Event]]:
        async with open_runner(resources, model_factory=lambda spec: model) as runner:
            first = await ask(runner, "How many customers are in Germany?", session_id=session_id)
            second = await ask(runner, "And in France?", session_id=session_id)
            assert runner.sessions.get(session_id).turns == 2
        return first, second

    first, second = run(scenario())
    assert first[-1].data["answer"] == answer
    assert {e.turn for e in second} == {2}
    assert transcript(model.sent[2]) == [
        ("human", "How many customers are in Germany?"),
        ("ai", answer),
        ("human", "And in France?"),
    ]
    assert second[-1].data["status"] == "answered"
    assert of_type(second, "table")[0].data["result_ref"] == f"{session_id}:2:1"


# ---- a killed process --------------------------------------------------------------------
def _lines(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The stream's lines as they arrive (a thread reads, so waiting can time out)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.strip())
        lines.put("<EOF>")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


def _wait_for_tool_checkpoint(data_dir: Path, session_id: str, timeout_s: float) -> Any:
    """The checkpoint once it says the tool step is done and the model is next."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = run(checkpoint_state(None, data_dir, session_id))
        if state.next == ("agent",) and guards(state.values)["tool_calls"] == 1:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint after the tool step: next={state.next}")
        time.sleep(0.1)


def test_turn_of_a_killed_process_is_resumed_from_its_checkpoint(
    prepared_dir: Path, tmp_path: Path
) -> None:
    data_dir = copy_data_dir(prepared_dir, tmp_path / "data")
    session_id = f"killed-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "child.log"
    with log.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), session_id, "hang"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert child.stdout is not None
        lines, reader = _lines(child.stdout)
        try:
            line = lines.get(timeout=90)
            assert line == "TOOL_DONE", log.read_text()[-3000:]
            before = _wait_for_tool_checkpoint(data_dir, session_id, timeout_s=20)
        finally:
            child.kill()
            child.wait(timeout=30)
            reader.join(timeout=10)
            child.stdout.close()
    assert child.returncode == -9
    assert outcome(before.values)["usage"]["input_tokens"] == 100

    answer = "There are 167 customers in Germany."
    model = ScriptedChatModel(
        script=[
            reply(answer),
            reply("", call("run_sql", sql=FRANCE)),
            reply("France has its own count in the table."),
        ]
    )

    async def scenario() -> tuple[list[Event], Any, list[Event], Any]:
        resources = build_resources(Settings(data_dir=data_dir))
        try:
            async with open_runner(resources, model_factory=lambda spec: model) as runner:
                resumed = await resume(runner, session_id)
                info = runner.sessions.get(session_id)
                stored = runner.services.results.get(f"{session_id}:1:1")
                second = await ask(runner, "And in France?", session_id=session_id)
        finally:
            resources.close()
        return resumed, info, second, stored

    resumed, info, second, stored = run(scenario())
    words = len(answer.split(" "))
    # Only the model step was left to do: the schema context is fetched again (it is not
    # checkpointed), but no tool runs again.
    assert shape(resumed) == [
        ("step", "retrieve", "start"),
        ("step", "retrieve", "end"),
        ("step", "agent", "start"),
        *[("token",)] * words,
        ("step", "agent", "end"),
        ("done", "answered"),
    ]
    assert {(e.session_id, e.turn) for e in resumed} == {(session_id, 1)}
    done = resumed[-1].data
    assert done["answer"] == answer
    assert done["usage"]["input_tokens"] == 200 and done["usage"]["model_calls"] == 2
    [ran] = tool_results(model.sent[0])
    assert f"result_ref {session_id}:1:1" in str(ran.content) and "167" in str(ran.content)
    assert stored.sql.startswith(GERMANY) and stored.rows == [[167]]
    assert info.turns == 1

    assert {(e.session_id, e.turn) for e in second} == {(session_id, 2)}
    assert second[-1].data["status"] == "answered"
    assert transcript(model.sent[1]) == [
        ("human", "How many customers are in Germany?"),
        ("ai", answer),
        ("human", "And in France?"),
    ]


# ---- resume: what it should report -------------------------------------------------------
def _crash(messages: list[Any]) -> Any:
    raise RuntimeError("process died here")


def _resume_after_crash(resources: Resources, spec: str) -> tuple[list[Event], list[str]]:
    """A turn whose model dies after run_sql (so the tool step is checkpointed), then resumed
    in the same process: (resumed events, the model specs the runner asked its factory for)."""
    asked: list[str] = []
    answer = reply("There are 167 customers in Germany.")
    models = {"builtin": ScriptedChatModel(script=[answer])}  # the default model
    models[spec] = ScriptedChatModel(script=[reply("", call("run_sql", sql=GERMANY)), _crash])

    def factory(name: str) -> ScriptedChatModel:
        asked.append(name)
        return models[name]

    session_id = uuid.uuid4().hex

    async def scenario() -> list[Event]:
        async with open_runner(resources, model_factory=factory) as runner:
            crashed = await ask(
                runner, "How many customers are in Germany?", session_id=session_id, model=spec
            )
            assert collect(crashed)["error"]["code"] == "internal_error"
            models[spec].script.append(answer)
            return await resume(runner, session_id)

    return run(scenario()), asked


def test_resume_continues_with_the_model_the_turn_started_with(resources: Resources) -> None:
    resumed, asked = _resume_after_crash(resources, "scripted-x")
    assert resumed[-1].data["status"] == "answered"
    assert asked == ["scripted-x"]


def test_resume_uses_the_model_of_the_interrupted_turn_not_the_first(resources: Resources) -> None:
    models = {
        "model-a": ScriptedChatModel(script=[reply("Hello."), reply("Wrong model.")]),
        "model-b": ScriptedChatModel(script=[reply("", call("run_sql", sql=GERMANY)), _crash]),
    }
    session_id = uuid.uuid4().hex

    async def scenario() -> list[Event]:
        async with open_runner(resources, model_factory=models.__getitem__) as runner:
            await ask(runner, "Say hello.", session_id=session_id, model="model-a")
            await ask(runner, "How many customers?", session_id=session_id, model="model-b")
            models["model-b"].script.append(reply("There are 167 customers in Germany."))
            return await resume(runner, session_id)

    resumed = run(scenario())
    assert resumed[-1].data["answer"] == "There are 167 customers in Germany."


def test_resumed_done_carries_the_sql_the_turn_ran(resources: Resources) -> None:
    resumed, _ = _resume_after_crash(resources, "builtin")
    done = resumed[-1].data
    assert done["status"] == "answered"
    assert done["sql"] is not None and done["sql"].startswith(GERMANY)


def test_resuming_an_unknown_session_is_not_found(resources: Resources) -> None:
    async def scenario() -> list[Event]:
        async with open_runner(resources, model_factory=lambda spec: ScriptedChatModel()) as runner:
            return await resume(runner, f"never-{uuid.uuid4().hex[:8]}")

    with pytest.raises(SqlsageError) as info:
        run(scenario())
    assert info.value.code == "not_found"


# ---- two processes, one PostgreSQL memory ------------------------------------------------
async def _forget(data_dir: Path, session_id: str) -> None:
    async with open_checkpointer(PG_URL, data_dir=data_dir) as saver:
        await delete_thread(saver, session_id)
    store = SessionStore(PG_URL, data_dir=data_dir)
    try:
        with suppress(SqlsageError):
            store.delete(session_id)
    finally:
        store.close()


@pytest.mark.postgres
def test_second_process_continues_a_session_kept_in_postgres(
    prepared_dir: Path, tmp_path: Path
) -> None:
    require_or_skip(postgres_available(), "PostgreSQL")
    data_dir = copy_data_dir(prepared_dir, tmp_path / "data")
    session_id = f"pytest-graph-{uuid.uuid4().hex[:12]}"
    model = ScriptedChatModel(
        script=[reply("", call("run_sql", sql=FRANCE)), reply("France is in the table.")]
    )

    async def second_turn() -> tuple[list[Event], Any]:
        resources = build_resources(Settings(data_dir=data_dir))
        try:
            async with open_runner(
                resources, model_factory=lambda spec: model, checkpoint_url=PG_URL
            ) as runner:
                events = await ask(runner, "And in France?", session_id=session_id)
                info = runner.sessions.get(session_id)
        finally:
            resources.close()
        return events, info

    try:
        child = subprocess.run(
            [sys.executable, str(CHILD), str(data_dir), session_id, "answer", PG_URL],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == 0, child.stderr[-3000:]
        first = json.loads(child.stdout.strip().splitlines()[-1])
        assert (first["session_id"], first["turn"], first["status"]) == (session_id, 1, "answered")

        events, info = run(second_turn())
        assert {(e.session_id, e.turn) for e in events} == {(session_id, 2)}
        assert events[-1].data["status"] == "answered"
        assert transcript(model.sent[0]) == [
            ("human", first["question"]),
            ("ai", first["answer"]),
            ("human", "And in France?"),
        ]
        assert info.turns == 2
        # Both processes kept their memory in PostgreSQL, none in the data directory.
        assert not (data_dir / "checkpoints.sqlite").exists()
        assert not (data_dir / "sessions.sqlite").exists()
    finally:
        run(_forget(data_dir, session_id))
    assert run(checkpoint_state(PG_URL, data_dir, session_id)).values == {}
    store = SessionStore(PG_URL, data_dir=data_dir)
    try:
        with pytest.raises(SqlsageError) as gone:
            store.get(session_id)
        assert gone.value.code == "not_found"
    finally:
        store.close()


def test_a_chart_of_a_result_from_turns_ago(resources: Resources) -> None:
    """Compaction keeps the latest result: 'show that as a pie chart' works three turns on."""

    async def scenario() -> list[dict[str, Any]]:
        outs = []
        session = None
        async with open_runner(resources) as runner:
            for question in (
                "How many customers are there per segment?",
                "Wie viele Kunden gibt es?",  # refused: no SQL
                "Wo sind sie?",  # refused: no SQL
                "show that as a pie chart",
            ):
                events = [e async for e in runner.stream(Turn(question, session_id=session))]
                outs.append(collect(events))
                session = outs[-1]["session_id"]
        return outs

    outs = run(scenario())
    assert outs[0]["status"] == "answered" and [o["status"] for o in outs[1:3]] == ["refused"] * 2
    assert outs[3]["status"] == "answered" and outs[3]["chart"]["mark"]["type"] == "arc"
    assert outs[3]["sql"] is None  # nothing ran again
