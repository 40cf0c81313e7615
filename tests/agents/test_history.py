"""Conversation history: turns, the token budget for the model, compaction of the state; and a
long real session whose model input stays bounded."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage

from agents.history import (
    HISTORY_TOKENS,
    OWN_NAME,
    compaction,
    for_model,
    split_turns,
    summarize,
)
from graphs.turns import Turn, collect
from server.agent_runtime import open_runner
from server.resources import build_resources
from server.settings import Settings
from tests.graphs.runs import run
from tests.graphs.scripted_model import ScriptedChatModel, call, reply


def _turn(n: int, *, words: int = 5) -> list[object]:
    """One finished turn: question, a run_sql call, its result, the answer."""
    ask = AIMessage(
        "", tool_calls=[{"name": "run_sql", "args": {"sql": f"SELECT {n}"}, "id": f"c{n}"}]
    )
    return [
        HumanMessage(f"question {n} " + "word " * words, id=f"h{n}"),
        ask.model_copy(update={"id": f"a{n}"}),
        ToolMessage(f"rows of {n}", tool_call_id=f"c{n}", id=f"t{n}"),
        AIMessage(f"answer {n}", id=f"f{n}"),
    ]


def _conversation(turns: int, **kw: int) -> list[object]:
    return [m for n in range(1, turns + 1) for m in _turn(n, **kw)]


def test_turns_start_at_user_questions_not_at_our_own_nudges() -> None:
    messages = _conversation(2)
    messages.insert(4, HumanMessage("check your figures", name=OWN_NAME))
    turns = split_turns(messages)  # type: ignore[arg-type]
    assert [str(t[0].content).split()[1] for t in turns] == ["1", "2"]
    assert len(turns[0]) == 5 and len(turns[1]) == 4  # the nudge stays in turn 1


def test_model_sees_the_current_turn_whole_and_earlier_turns_as_question_and_answer() -> None:
    sent = for_model(_conversation(3))  # type: ignore[arg-type]
    assert [m.id for m in sent] == ["h1", "f1", "h2", "f2", "h3", "a3", "t3", "f3"]


def test_over_budget_the_oldest_turns_become_one_summary() -> None:
    messages = _conversation(40, words=60)  # ~80 tokens per question: 40 turns do not fit
    sent = for_model(messages, budget=1000)  # type: ignore[arg-type]
    summary = sent[0]
    assert isinstance(summary, HumanMessage) and summary.name == OWN_NAME
    assert "- Q: question 1 " in str(summary.content) and "SQL: SELECT 1" in str(summary.content)
    assert "A: answer 1" in str(summary.content)
    kept = [m for m in sent[2:] if isinstance(m, HumanMessage)]
    assert str(kept[-1].content).startswith("question 40")
    assert sum(len(str(m.content)) // 4 for m in sent[2:-4]) <= 1000  # earlier turns in budget
    assert len(sent) < len(messages) / 4


def test_summarize_one_turn() -> None:
    line = summarize(_turn(7))  # type: ignore[arg-type]
    assert line == "- Q: question 7 word word word word word | SQL: SELECT 7 | A: answer 7"


def test_compaction_drops_tool_traffic_older_than_the_previous_turn() -> None:
    removals = compaction(_conversation(3))  # type: ignore[arg-type]
    assert all(isinstance(r, RemoveMessage) for r in removals)
    assert sorted(r.id for r in removals) == ["a1", "t1"]  # turn 1 only; turn 2 stays whole


def test_compaction_keeps_the_latest_result_however_old() -> None:
    first = _turn(1)
    first[2] = ToolMessage(
        "rows of 1", tool_call_id="c1", id="t1", name="run_sql", artifact={"ref": "s:1:1"}
    )
    talk = [m for n in (2, 3, 4) for m in _turn(n)[:1] + _turn(n)[3:]]  # no SQL since turn 1
    removals = compaction([*first, *talk])  # type: ignore[arg-type]
    assert [r.id for r in removals] == ["a1"]  # the call goes, its result stays for "chart that"


def test_a_long_session_keeps_the_model_input_bounded(tmp_path: Path) -> None:
    """30 real turns through the graph with the SQLite checkpointer."""
    resources = build_resources(Settings(data_dir=tmp_path))
    script = []
    for n in range(30):
        script += [
            reply("", call("run_sql", sql=f"SELECT {n} AS n, '{'x' * 400}' AS padding")),
            reply(f"The answer to question {n} is {n}."),
        ]
    model = ScriptedChatModel(script=script)

    async def scenario() -> tuple[str, object]:
        session = None
        async with open_runner(resources, model_factory=lambda spec: model) as runner:
            for n in range(30):
                events = [
                    e
                    async for e in runner.stream(
                        Turn(f"Question number {n}: " + "please " * 150, session_id=session)
                    )
                ]
                out = collect(events)
                assert out["status"] == "answered", out
                session = out["session_id"]
            state = await runner.graph.aget_state({"configurable": {"thread_id": session}})
        return str(session), state

    _, state = run(scenario())
    last_input = model.sent[-1]
    chars = sum(len(str(m.content)) for m in last_input[1:])  # without the system prompt
    assert chars // 4 <= HISTORY_TOKENS + 1500  # the budget plus the current turn
    summary = next(m for m in last_input if isinstance(m, HumanMessage) and m.name == OWN_NAME)
    assert "- Q: Question number 0:" in str(summary.content)
    # The state kept only questions and answers of old turns; tool traffic went.
    tools = [m for m in state.values["messages"] if isinstance(m, ToolMessage)]  # type: ignore[attr-defined]
    assert len(tools) == 2  # the previous turn's and this turn's run_sql results
