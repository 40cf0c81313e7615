"""Whole turns through the compiled graph with a scripted model: the event stream, repairs,
the repair and step budgets, and two sessions running at once."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage

from graphs.events import Event
from graphs.state import guards, outcome
from graphs.turns import Turn, collect
from server.agent_runtime import open_runner
from server.resources import Resources

from .runs import ask, checkpoint_state, of_type, run, sample_rows, shape, tool_results, tool_steps
from .scripted_model import ScriptedChatModel, call, reply

TOP_COUNTRIES = (
    "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country "
    "ORDER BY customers DESC LIMIT 3"
)
REVENUE_2023 = (
    "SELECT SUM(quantity * unit_price) AS revenue FROM order_items JOIN orders "
    "ON orders.order_id = order_items.order_id WHERE order_date LIKE '2023%'"
)


def _turn(resources: Resources, model: ScriptedChatModel, question: str, **turn: Any) -> Any:
    async def scenario() -> list[Event]:
        async with open_runner(resources, model_factory=lambda spec: model) as runner:
            return await ask(runner, question, **turn)

    return run(scenario())


def test_straight_answer_streams_the_exact_event_sequence(resources: Resources) -> None:
    answer = "The table lists the three countries with the most customers."
    model = ScriptedChatModel(
        script=[
            reply("", call("semantic_search", question="customers per country")),
            reply("", call("run_sql", sql=TOP_COUNTRIES)),
            reply("", call("build_chart", chart_type="bar", x="country", y="customers")),
            reply(answer),
        ]
    )
    events = _turn(resources, model, "Which countries have the most customers?")

    words = len(answer.split(" "))
    assert shape(events) == [
        ("session",),
        ("step", "retrieve", "start"),
        ("step", "retrieve", "end"),
        ("step", "agent", "start"),
        ("step", "agent", "end"),
        ("step", "semantic_search", "start"),
        ("step", "semantic_search", "end"),
        ("step", "agent", "start"),
        ("step", "agent", "end"),
        ("step", "run_sql", "start"),
        ("sql",),
        ("table",),
        ("step", "run_sql", "end"),
        ("step", "agent", "start"),
        ("step", "agent", "end"),
        ("step", "build_chart", "start"),
        ("chart",),
        ("step", "build_chart", "end"),
        ("step", "agent", "start"),
        *[("token",)] * words,
        ("step", "agent", "end"),
        ("done", "answered"),
    ]
    session_id = events[0].session_id
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {(e.session_id, e.turn) for e in events} == {(session_id, 1)}
    assert "".join(e.data["text"] for e in of_type(events, "token")) == answer

    [sql_event] = of_type(events, "sql")
    [table] = of_type(events, "table")
    [chart] = of_type(events, "chart")
    done = events[-1].data
    assert sql_event.data["valid"] is True and sql_event.data["dialect"] == "sqlite"
    assert table.data["rows"] == sample_rows(
        resources.settings.data_dir / "sample.sqlite", TOP_COUNTRIES
    )
    assert table.data["result_ref"] == f"{session_id}:1:1"
    assert chart.data["type"] == "bar" and chart.data["spec"]["mark"]["type"] == "bar"
    assert done["answer"] == answer
    assert done["sql"] == sql_event.data["sql"] and "GROUP BY country" in done["sql"]
    assert done["usage"] == {
        "input_tokens": 400,
        "output_tokens": 80,
        "cost_usd": 0.0,
        "model_calls": 4,
    }
    out = collect(events)
    assert out["status"] == "answered" and out["error"] is None
    assert out["chart"] == chart.data["spec"] and out["result_ref"] == table.data["result_ref"]
    assert [s["name"] for s in out["steps"]] == [
        "retrieve",
        "agent",
        "semantic_search",
        "agent",
        "run_sql",
        "agent",
        "build_chart",
        "agent",
    ]


def test_unknown_column_is_repaired_with_the_hint(resources: Resources) -> None:
    model = ScriptedChatModel(
        script=[
            reply("", call("run_sql", sql="SELECT SUM(revnue) FROM orders")),
            reply("", call("run_sql", sql=REVENUE_2023)),
            reply("Revenue in 2023 is in the table."),
        ]
    )
    events = _turn(resources, model, "What was the revenue in 2023?")

    assert len(model.sent) == 3
    [error] = tool_results(model.sent[1])
    assert error.status == "error" and error.name == "run_sql"
    text = str(error.content)
    assert text.startswith("Error [unknown_column]")
    assert "'revnue'" in text and "Hint: Columns there:" in text and "order_date" in text
    assert "call validate_sql or run_sql again" in text
    assert [e.data["valid"] for e in of_type(events, "sql")] == [False, True]
    out = collect(events)
    assert out["status"] == "answered" and out["error"] is None
    assert "SUM(quantity * unit_price)" in out["sql"]
    assert [s["summary"].split(" ")[0] for s in out["steps"] if s["name"] == "run_sql"] == [
        "error:",
        "1",
    ]
    state = run(checkpoint_state(None, resources.settings.data_dir, out["session_id"]))
    assert guards(state.values)["failures"] == 1
    assert outcome(state.values)["status"] == "answered"


def test_third_failed_query_exhausts_the_repair_budget(resources: Resources) -> None:
    bad = ["SELECT revnue FROM orders", "SELECT totl FROM orders", "SELECT amount_zzz FROM orders"]
    model = ScriptedChatModel(
        script=[reply("", call("run_sql", sql=sql)) for sql in bad]
        + [reply("", call("run_sql", sql="SELECT 1"))]  # must never be asked for
    )
    events = _turn(resources, model, "What is the total amount of all orders?")

    assert len(model.sent) == 3
    assert tool_steps(events) == ["run_sql"] * 3
    assert shape(events)[-2:] == [("error",), ("done", "failed")]
    out = collect(events)
    assert out["status"] == "failed" and out["sql"] is None
    assert out["error"]["code"] == "budget_exhausted"
    assert out["error"]["message"].startswith("After 3 failed attempts the last error was: ")
    assert "Column 'amount_zzz' not found in table 'orders'" in out["error"]["message"]
    assert out["answer"].startswith("I could not answer")
    assert "amount_zzz" in out["answer"]
    # The honest answer streams like a model's, after the agent step that gave up.
    assert shape(events)[-4:-2] == [("step", "agent", "end"), ("token",)]
    assert of_type(events, "token")[-1].data["text"] == out["answer"]


def test_step_budget_stops_a_model_that_keeps_searching(resources: Resources) -> None:
    model = ScriptedChatModel(
        script=[reply("", call("semantic_search", question=f"try {n}")) for n in range(13)]
        + [reply("An answer that must never be asked for.")]
    )
    events = _turn(resources, model, "Which table holds the customers?")

    assert tool_steps(events) == ["semantic_search"] * 12
    # 12 calls with tools, then one last call to answer; it asked for a 13th tool instead.
    assert len(model.sent) == 13
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert shape(events)[-2:] == [("error",), ("done", "failed")]
    out = collect(events)
    assert out["error"]["code"] == "budget_exhausted"
    assert out["error"]["message"] == "The step budget of 12 tool calls ran out."
    assert (
        out["answer"]
        == "I could not answer this question. The step budget of 12 tool calls ran out."
    )


def test_step_budget_leaves_the_model_a_last_answer(resources: Resources) -> None:
    model = ScriptedChatModel(
        script=[reply("", call("semantic_search", question=f"try {n}")) for n in range(12)]
        + [reply("The customers table holds them.")]
    )
    events = _turn(resources, model, "Which table holds the customers?")

    assert tool_steps(events) == ["semantic_search"] * 12 and len(model.sent) == 13
    out = collect(events)
    assert out["status"] == "answered" and out["error"] is None
    assert out["answer"] == "The customers table holds them."


def test_step_budget_caps_parallel_tool_calls_in_one_reply(resources: Resources) -> None:
    calls = [call("semantic_search", question=f"part {n}") for n in range(13)]
    model = ScriptedChatModel(script=[reply("", *calls), reply("From what I found: customers.")])
    events = _turn(resources, model, "Which table holds the customers?")

    assert tool_steps(events) == ["semantic_search"] * 12
    assert len(model.sent) == 2  # the reply with 13 calls, then the last word without tools
    out = collect(events)
    assert out["status"] == "answered" and out["answer"] == "From what I found: customers."
    state = run(checkpoint_state(None, resources.settings.data_dir, out["session_id"]))
    answers = [m for m in state.values["messages"] if isinstance(m, ToolMessage)]
    # Every call gets an answer (providers reject a transcript with an unanswered call).
    assert [m.tool_call_id for m in answers] == [c["id"] for c in calls]
    assert str(answers[-1].content).startswith("Error [budget_exhausted]")
    assert all(m.status == "success" for m in answers[:12])


def test_two_sessions_at_once_do_not_cross(resources: Resources) -> None:
    questions = {
        "model-a": ("How many customers are in Germany?", "SELECT COUNT(*) AS n FROM customers "
                    "WHERE country = 'Germany'"),
        "model-b": ("How many products are there?", "SELECT COUNT(*) AS n FROM products"),
    }  # fmt: skip
    models = {
        spec: ScriptedChatModel(
            delay_s=0.05, script=[reply("", call("run_sql", sql=sql)), reply(f"Done: {spec}.")]
        )
        for spec, (_, sql) in questions.items()
    }
    arrivals: list[Event] = []

    async def one(runner: Any, spec: str) -> list[Event]:
        events = []
        async for event in runner.stream(Turn(questions[spec][0], model=spec)):
            arrivals.append(event)
            events.append(event)
        return events

    async def scenario() -> tuple[list[Event], list[Event], Any, Any]:
        async with open_runner(resources, model_factory=models.__getitem__) as runner:
            a, b = await asyncio.gather(one(runner, "model-a"), one(runner, "model-b"))
            infos = [runner.sessions.get(e[0].session_id) for e in (a, b)]
            stored = [runner.services.results.get(collect(e)["result_ref"]) for e in (a, b)]
        return a, b, infos, stored

    a, b, infos, stored = run(scenario())
    ids = [a[0].session_id, b[0].session_id]
    assert ids[0] != ids[1]
    # Both turns were in flight together: each started before the other finished.
    assert arrivals.index(b[0]) < arrivals.index(a[-1])
    assert arrivals.index(a[0]) < arrivals.index(b[-1])
    for events, session_id, spec, info, result in zip(
        (a, b), ids, questions, infos, stored, strict=True
    ):
        question, sql = questions[spec]
        assert {(e.session_id, e.turn) for e in events} == {(session_id, 1)}
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        out = collect(events)
        assert out["status"] == "answered" and out["answer"] == f"Done: {spec}."
        assert out["sql"].startswith(sql)
        assert out["result_ref"] == f"{session_id}:1:1"
        assert (info.turns, info.model, info.title) == (1, spec, question)
        assert result.session_id == session_id and result.sql.startswith(sql)
        seen = [
            m.content for sent in models[spec].sent for m in sent if isinstance(m, HumanMessage)
        ]
        assert set(seen) == {question}
    assert stored[0].rows != stored[1].rows


def test_an_answer_with_invented_figures_is_sent_back_once(resources: Resources) -> None:
    sql = "SELECT COUNT(*) AS n FROM customers WHERE country = 'Germany'"
    [[truth]] = sample_rows(resources.settings.data_dir / "sample.sqlite", sql)
    model = ScriptedChatModel(
        script=[
            reply("", call("run_sql", sql=sql)),
            reply("There are 98,765 customers in Germany."),
            reply(f"There are {truth} customers in Germany."),
        ]
    )
    out = collect(_turn(resources, model, "How many customers are in Germany?"))

    assert (
        out["status"] == "answered" and out["answer"] == f"There are {truth} customers in Germany."
    )
    nudged = model.sent[2]
    assert str(nudged[-2].content) == "There are 98,765 customers in Germany."  # kept, not lost
    assert "98,765" in str(nudged[-1].content) and "not in any query result" in str(
        nudged[-1].content
    )


def test_the_number_check_asks_only_once(resources: Resources) -> None:
    sql = "SELECT COUNT(*) AS n FROM customers WHERE country = 'Germany'"
    model = ScriptedChatModel(
        script=[
            reply("", call("run_sql", sql=sql)),
            reply("There are 98,765 customers in Germany."),
            reply("Still 98,765."),
        ]
    )
    out = collect(_turn(resources, model, "How many customers are in Germany?"))
    assert len(model.sent) == 3 and out["status"] == "answered" and out["answer"] == "Still 98,765."
