// sqlsage chat UI: streams a turn's events (POST /api/chat, SSE over fetch), shows each step as
// it happens, the SQL, a sortable paged table, the chart, the answer; keeps sessions.
// Everything that comes from the server or the user goes into the page as text (textContent),
// never as HTML: questions, answers and data values cannot run script.
"use strict";

(() => {
  const PAGE_ROWS = 20;
  const NUMBER = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
  const KEY_STORE = "sqlsage.key";
  const state = {
    info: { auth_required: false, max_question_chars: 4000 },
    key: localStorage.getItem(KEY_STORE) || "",
    sessionId: null,
    running: false,
    renaming: false,  // a session title is being edited: the list is not redrawn under it
  };
  const $ = (id) => document.getElementById(id);

  // ---- small DOM and HTTP helpers ---------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  class ApiError extends Error {
    constructor(status, error) {
      super(error.message);
      this.status = status;
      this.error = error;
    }
  }

  function authHeaders(extra = {}) {
    const headers = { ...extra };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    return headers;
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return { code: "http_error", message: `The server answered ${response.status}.`, hint: null };
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    if (response.status === 401) askForKey();
    if (!response.ok) throw new ApiError(response.status, await errorOf(response));
    if (response.status === 204) return null;
    return response.json();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function banner(text) {
    const node = $("banner");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function errorBox(error) {
    return el("div", { class: "error-box", role: "alert" },
      el("div", { class: "message", text: error.message || String(error) }),
      error.hint ? el("div", { class: "hint", text: error.hint }) : null);
  }

  // ---- SQL highlighting (spans with text, never HTML) ------------------------------------
  const KEYWORDS = new Set(("select from where group by order having limit offset join left right " +
    "inner outer full cross on as and or not in is null like between case when then else end " +
    "distinct union all intersect except with asc desc count sum avg min max coalesce cast " +
    "over partition exists true false fetch first rows only").split(" "));
  const TOKEN = /('(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\b\d+(?:\.\d+)?\b|\b[A-Za-z_][A-Za-z0-9_]*\b|\s+|.)/g;

  function highlightSql(sql) {
    const fragment = document.createDocumentFragment();
    for (const token of sql.match(TOKEN) || []) {
      let kind = null;
      if (token.startsWith("'")) kind = "str";
      else if (/^\d/.test(token)) kind = "num";
      else if (KEYWORDS.has(token.toLowerCase())) kind = "kw";
      fragment.append(kind ? el("span", { class: kind, text: token }) : document.createTextNode(token));
    }
    return fragment;
  }

  // ---- SSE over fetch ---------------------------------------------------------------------
  async function* sseEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = { event: "message", id: null, data: [] };
        for (const line of frame.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.event = value;
          else if (field === "id") event.id = value;
          else if (field === "data") event.data.push(value);
        }
        if (event.data.length) yield { event: event.event, id: event.id, data: JSON.parse(event.data.join("\n")) };
      }
    }
  }

  // ---- one turn on the page -----------------------------------------------------------------
  const STEP_TEXT = {
    retrieve: ["Looking up the schema…", (d) => `Schema context: ${d.summary}`],
    semantic_search: [(d) => `Searching the schema for “${(d.args || {}).question || ""}”…`, (d) => `Found ${d.summary}`],
    schema_lookup: ["Reading table definitions…", (d) => `Read ${d.summary}`],
    validate_sql: ["Validating SQL…", (d) => `SQL ${d.summary}`],
    run_sql: ["Running the SQL (read-only)…", (d) => `Ran: ${d.summary}`],
    build_chart: ["Building the chart…", (d) => `Chart: ${d.summary}`],
  };

  class TurnView {
    constructor(question) {
      const node = $("turn-template").content.firstElementChild.cloneNode(true);
      this.node = node;
      this.steps = node.querySelector(".steps");
      this.artifacts = node.querySelector(".artifacts");
      this.answer = node.querySelector(".answer");
      this.reasoning = node.querySelector(".reasoning");
      this.actions = node.querySelector(".turn-actions");
      this.openSteps = new Map();
      this.sessionId = null;
      this.turn = null;
      node.querySelector(".question").textContent = question;
      $("empty").hidden = true;
      $("messages").append(node);
      grown.observe(node);
      scrollToEnd(true);
    }

    onEvent(data) {
      // Each model call's reasoning gets a paragraph of its own.
      if (data.event !== "reasoning" && data.event !== "token") this.reasoningPara = null;
      switch (data.event) {
        case "session": this.sessionId = data.session_id; this.turn = data.turn; break;
        case "step": this.step(data); break;
        case "reasoning":
          this.reasoning.hidden = false;
          if (!this.reasoningPara) this.reasoningPara = this.reasoning.querySelector(".reasoning-text").appendChild(el("p"));
          this.reasoningPara.append(data.text);
          break;
        case "token": this.answer.append(data.text); break;
        case "sql": if (data.valid) this.sql(data.sql); break;
        case "table": this.table(data); break;
        case "chart": this.chart(data.spec); break;
        case "error": this.errorMessage = data.message; this.artifacts.append(errorBox(data)); break;
        case "done": this.done(data); break;
        default: break;
      }
    }

    step(data) {
      const texts = STEP_TEXT[data.name];
      if (!texts) {  // the model's own turns: a transient "thinking" line
        if (data.status === "start") this.thinking = this.steps.appendChild(el("li", { class: "thinking", text: "Thinking…" }));
        else if (this.thinking) { this.thinking.remove(); this.thinking = null; }
        return;
      }
      const [startText, endText] = texts;
      if (data.status === "start") {
        const text = typeof startText === "function" ? startText(data) : startText;
        const item = el("li", { class: "running" }, el("span", { class: "step-text", text }));
        this.steps.append(item);
        this.openSteps.set(data.name, item);
        return;
      }
      const item = this.openSteps.get(data.name) || this.steps.appendChild(el("li", {}, el("span", { class: "step-text" })));
      this.openSteps.delete(data.name);
      const failed = String(data.summary || "").startsWith("error");
      item.className = failed ? "failed" : "done";
      item.querySelector(".step-text").textContent = failed ? `${data.name}: ${data.summary}` : endText(data);
      item.append(el("span", { class: "ms", text: `${Math.round(data.elapsed_ms || 0)} ms` }));
    }

    sql(sql) {
      const old = this.artifacts.querySelector(".sql-card");
      if (old) old.remove();
      const code = el("pre", { class: "sql" }, el("code", {}, highlightSql(sql)));
      const copy = el("button", { type: "button", class: "text-button copy", "aria-label": "Copy SQL", text: "Copy",
        onclick: async () => {
          try { await navigator.clipboard.writeText(sql); copy.textContent = "Copied"; }
          catch (_) { copy.textContent = "Copy failed"; }
          setTimeout(() => { copy.textContent = "Copy"; }, 1500);
        } });
      const card = el("section", { class: "card sql-card", "aria-label": "SQL" },
        el("div", { class: "card-head" }, el("span", { text: "SQL" }), el("span", { class: "spacer" }), copy),
        code);
      this.artifacts.prepend(card);
    }

    table(data) {
      const old = this.artifacts.querySelector(".table-card");
      if (old) old.remove();
      this.result = data;
      this.artifacts.append(new ResultTable(data).node);
    }

    chart(spec) {
      const old = this.artifacts.querySelector(".chart-card");
      if (old) old.remove();
      const box = el("div", { class: "chart" });
      const card = el("section", { class: "card chart-card", "aria-label": "Chart" }, box);
      this.artifacts.append(card);
      renderChart(box, spec);
    }

    done(data) {
      if (!this.answer.textContent && data.answer) this.answer.textContent = data.answer;
      // A refusal that only repeats the error shown above it says nothing new.
      if (data.status !== "answered" && this.errorMessage && this.answer.textContent.includes(this.errorMessage)) {
        this.answer.textContent = "";
      }
      for (const item of this.steps.querySelectorAll(".thinking")) item.remove();
      this.node.dataset.status = data.status;
      if (this.sessionId && this.turn) this.enableActions(Boolean(data.sql));
    }

    enableActions(hasSql) {
      this.actions.hidden = false;
      const exportButton = this.actions.querySelector(".export");
      exportButton.hidden = !hasSql;
      exportButton.onclick = () => exportCsv(this.sessionId, this.turn, this.actions.querySelector(".feedback-note"));
      for (const [selector, rating] of [[".thumb-up", "up"], [".thumb-down", "down"]]) {
        this.actions.querySelector(selector).onclick = (e) => this.rate(rating, e.currentTarget);
      }
    }

    async rate(rating, button) {
      const note = this.actions.querySelector(".feedback-note");
      try {
        const out = await api("/api/feedback", {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ session_id: this.sessionId, turn: this.turn, rating }),
        });
        for (const b of this.actions.querySelectorAll("[aria-pressed]")) b.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-pressed", "true");
        note.textContent = out.message;
      } catch (err) {
        note.textContent = err.error ? err.error.message : String(err);
      }
    }

    static fromRecord(session, record) {
      const view = new TurnView(record.question);
      view.sessionId = session;
      view.turn = record.turn;
      if (record.sql) view.sql(record.sql);
      if (record.columns && record.columns.length) {
        view.table({ columns: record.columns, rows: record.rows, row_count: record.row_count, truncated: record.truncated });
      }
      if (record.chart) view.chart(record.chart);
      if (record.error && record.status !== "answered") view.artifacts.append(errorBox(record.error));
      view.answer.textContent = record.answer;
      view.done({ status: record.status, sql: record.sql, answer: record.answer });
      return view;
    }
  }

  class ResultTable {
    constructor(data) {
      this.columns = data.columns;
      this.rows = data.rows.map((row, index) => ({ row, index }));
      this.page = 0;
      this.sortColumn = null;
      this.sortDir = 1;
      this.body = el("tbody");
      this.headRow = el("tr");
      this.pager = el("div", { class: "pager" });
      const more = data.truncated ? ` (first ${data.row_count}; the query has more)` : "";
      this.node = el("section", { class: "card table-card", "aria-label": "Result table" },
        el("div", { class: "card-head" }, el("span", { text: `${data.row_count} row(s)${more}` })),
        el("div", { class: "table-wrap" }, el("table", { class: "result" }, el("thead", {}, this.headRow), this.body)),
        this.pager);
      this.columns.forEach((column, i) => {
        const button = el("button", { type: "button", onclick: () => this.sortBy(i) }, el("span", { text: column.name }), el("span", { class: "arrow", "aria-hidden": "true" }));
        const numeric = ["integer", "number"].includes(column.type);
        this.headRow.append(el("th", { scope: "col", "aria-sort": "none", class: numeric ? "num" : "" }, button));
      });
      this.render();
    }

    sortBy(i) {
      this.sortDir = this.sortColumn === i ? -this.sortDir : 1;
      this.sortColumn = i;
      const dir = this.sortDir;
      const numeric = ["integer", "number"].includes(this.columns[i].type);
      this.rows.sort((a, b) => {
        const x = a.row[i];
        const y = b.row[i];
        if (x == null || y == null) return x == null ? (y == null ? 0 : 1) : -1;  // NULLs last
        const order = numeric ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
        return order * dir || a.index - b.index;
      });
      this.page = 0;
      this.render();
    }

    render() {
      [...this.headRow.children].forEach((th, i) => {
        const sorted = i === this.sortColumn;
        th.setAttribute("aria-sort", sorted ? (this.sortDir > 0 ? "ascending" : "descending") : "none");
        th.querySelector(".arrow").textContent = sorted ? (this.sortDir > 0 ? "▲" : "▼") : "";
      });
      const pages = Math.max(1, Math.ceil(this.rows.length / PAGE_ROWS));
      const start = this.page * PAGE_ROWS;
      const slice = this.rows.slice(start, start + PAGE_ROWS);
      this.body.replaceChildren(...slice.map(({ row }) => el("tr", {}, ...row.map((value, i) => {
        const numeric = ["integer", "number"].includes(this.columns[i].type);
        const text = value == null ? "NULL" : typeof value === "object" ? JSON.stringify(value)
          : numeric && typeof value === "number" ? NUMBER.format(value) : String(value);
        return el("td", { class: numeric ? "num" : "", text });
      }))));
      const end = Math.min(start + PAGE_ROWS, this.rows.length);
      this.pager.replaceChildren(
        el("button", { type: "button", class: "text-button prev", "aria-label": "Previous page", text: "‹ Prev",
          onclick: () => { this.page -= 1; this.render(); } }),
        el("span", { class: "page-info", text: this.rows.length ? `Rows ${start + 1}–${end} of ${this.rows.length} · page ${this.page + 1} of ${pages}` : "No rows" }),
        el("button", { type: "button", class: "text-button next", "aria-label": "Next page", text: "Next ›",
          onclick: () => { this.page += 1; this.render(); } }));
      this.pager.querySelector(".prev").disabled = this.page === 0;
      this.pager.querySelector(".next").disabled = this.page >= pages - 1;
    }
  }

  function renderChart(box, spec) {
    if (typeof window.vegaEmbed !== "function") {
      box.append(el("p", { text: "The chart library did not load; the chart spec is kept with the session." }));
      return;
    }
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const options = { actions: false, renderer: "svg" };
    if (dark) Object.assign(options, { theme: "dark", config: { background: null } });
    window.vegaEmbed(box, spec, options).catch((err) => {
      box.replaceChildren(errorBox({ message: `The chart could not be drawn: ${err.message}` }));
    });
  }

  async function exportCsv(sessionId, turn, note) {
    try {
      const response = await fetch(`/api/export/${encodeURIComponent(sessionId)}/${turn}.csv`, { headers: authHeaders() });
      if (!response.ok) throw new ApiError(response.status, await errorOf(response));
      const blob = await response.blob();
      const link = el("a", { href: URL.createObjectURL(blob), download: `sqlsage-${sessionId}-${turn}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (err) {
      note.textContent = err.error ? `${err.error.message} ${err.error.hint || ""}` : String(err);
    }
  }

  // ---- scrolling: follow the stream only while the reader stays at the bottom -------------
  // Content that grows (tokens, a chart drawn later) keeps the view at the end; a reader who
  // scrolls up stops the following until they scroll back down.
  let following = true;
  function nearBottom() {
    const box = $("messages");
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }
  function scrollToEnd(force) {
    if (force) following = true;
    if (following) { const box = $("messages"); box.scrollTop = box.scrollHeight; }
  }
  $("messages").addEventListener("scroll", () => { following = nearBottom(); }, { passive: true });
  const grown = new ResizeObserver(() => scrollToEnd(false));

  // ---- asking ------------------------------------------------------------------------------
  function composerError(text) {
    const node = $("composer-error");
    node.textContent = text || "";
    node.hidden = !text;
  }

  async function ask(text) {
    const question = text.trim();
    const limit = state.info.max_question_chars;
    if (!question) { composerError("Type a question first."); return; }
    if (question.length > limit) {
      composerError(`Your question is ${question.length.toLocaleString("en")} characters long; the limit is ${limit.toLocaleString("en")}. Shorten it and send again.`);
      return;
    }
    if (state.running) { composerError("Wait for the current answer to finish."); return; }
    composerError("");
    $("question").value = "";
    setRunning(true);
    const view = new TurnView(question);
    const body = { message: question };
    if (state.sessionId) body.session_id = state.sessionId;
    if ($("db-picker").value) body.db = $("db-picker").value;
    if ($("model-picker").value) body.model = $("model-picker").value;
    try {
      const response = await fetch("/api/chat", {
        method: "POST", headers: authHeaders({ "content-type": "application/json" }), body: JSON.stringify(body),
      });
      if (response.status === 401) askForKey();
      if (!response.ok) {
        const error = await errorOf(response);
        if (error.code === "session_busy") error.hint = "This session is answering in another tab or window. Wait for it, then ask again (or start a new chat).";
        view.artifacts.append(errorBox(error));
        return;
      }
      await follow(response, view);
    } catch (err) {
      view.artifacts.append(errorBox({ message: "The server could not be reached.", hint: "Check that sqlsage is running, then ask again." }));
    } finally {
      setRunning(false);
      loadSessions();
    }
  }

  async function follow(response, view) {
    let lastId = null;
    let finished = false;
    const read = async (resp) => {
      for await (const frame of sseEvents(resp)) {
        lastId = frame.id || lastId;
        if (frame.event === "session" && !state.sessionId) {
          selectSession(frame.data.session_id, false);
          loadSessions();  // the new session shows in the list while its first answer streams
        }
        view.onEvent(frame.data);
        if (frame.event === "done") finished = true;
      }
    };
    try { await read(response); } catch (_) { /* the stream broke: reconnect below */ }
    for (let attempt = 1; !finished; attempt += 1) {
      if (!lastId) { view.artifacts.append(errorBox({ message: "The connection closed before the answer started.", hint: "Ask again." })); return; }
      const wait = Math.min(1000 * 2 ** (attempt - 1), 8000);
      banner(`The connection to the server was lost. Reconnecting in ${Math.round(wait / 1000)} s (attempt ${attempt})…`);
      await sleep(wait);
      try {
        const resp = await fetch("/api/chat/events", { headers: authHeaders({ "Last-Event-ID": lastId }) });
        if (!resp.ok) {
          if (resp.status >= 500) continue;
          view.artifacts.append(errorBox(await errorOf(resp)));
          break;
        }
        banner("Reconnected.");
        await read(resp);
      } catch (_) { /* still down: try again */ }
      if (attempt >= 40) { view.artifacts.append(errorBox({ message: "The server did not come back.", hint: "Reload the page to see the session's history." })); break; }
    }
    banner("");
  }

  function setRunning(running) {
    state.running = running;
    $("send").disabled = running;
  }

  // ---- sessions ------------------------------------------------------------------------------
  async function loadSessions() {
    let sessions = [];
    try { sessions = await api("/api/sessions?limit=100"); } catch (err) { return; }
    if (state.renaming) return;  // redrawn when the edit ends
    const list = $("session-list");
    list.replaceChildren(...sessions.map((s) => {
      const open = el("button", { type: "button", class: "session-open", title: s.title, text: s.title || "Untitled", onclick: () => { selectSession(s.session_id, true); closeSidebar(); } });
      if (s.session_id === state.sessionId) open.setAttribute("aria-current", "true");
      const rename = el("button", { type: "button", class: "icon-button rename", "aria-label": `Rename “${s.title}”`, text: "✎",
        onclick: () => startRename(item, open, s) });
      const remove = el("button", { type: "button", class: "icon-button delete", "aria-label": `Delete “${s.title}”`, text: "✕",
        onclick: () => confirmDelete(s) });
      const item = el("li", { class: s.session_id === state.sessionId ? "current" : "", "data-session": s.session_id }, open, rename, remove);
      return item;
    }));
  }

  // Rename in place: the title becomes a text box; Enter or leaving it saves, Escape cancels.
  function startRename(item, open, s) {
    if (item.querySelector(".rename-input")) return;
    const input = el("input", { type: "text", class: "rename-input", "aria-label": `New title for “${s.title}”`,
      maxlength: String(state.info.max_title_chars || 200) });
    input.value = s.title || "";
    let settled = false;
    const finish = async (save) => {
      if (settled) return;
      settled = true;
      state.renaming = false;
      const title = input.value.trim();
      if (save && title && title !== s.title) {
        try {
          await api(`/api/sessions/${encodeURIComponent(s.session_id)}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ title }) });
        } catch (err) { banner(err.error ? err.error.message : String(err)); }
      } else if (save && !title) {
        banner("A session title cannot be empty; the old title was kept.");
      }
      await loadSessions();
      const again = document.querySelector(`#session-list li[data-session="${CSS.escape(s.session_id)}"] .rename`);
      if (again) again.focus();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      else if (e.key === "Escape") { e.preventDefault(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
    state.renaming = true;
    open.replaceWith(input);
    input.focus();
    input.select();
  }

  // Delete asks first, in the page's own dialog (Cancel has the focus).
  function confirmDelete(s) {
    const dialog = $("delete-dialog");
    $("delete-title").textContent = s.title || "Untitled";
    dialog.returnValue = "";
    dialog.onclose = async () => {
      if (dialog.returnValue !== "delete") return;
      try { await api(`/api/sessions/${encodeURIComponent(s.session_id)}`, { method: "DELETE" }); }
      catch (err) { banner(err.error ? err.error.message : String(err)); }
      if (s.session_id === state.sessionId) newSession();
      loadSessions();
    };
    dialog.showModal();
    $("delete-cancel").focus();
  }

  function clearMessages() {
    for (const turn of $("messages").querySelectorAll(".turn")) turn.remove();
    $("empty").hidden = false;
  }

  function newSession() {
    state.sessionId = null;
    history.replaceState(null, "", location.pathname);
    clearMessages();
    loadSessions();
    $("question").focus();
  }

  async function selectSession(sessionId, render) {
    state.sessionId = sessionId;
    history.replaceState(null, "", `#session=${encodeURIComponent(sessionId)}`);
    for (const li of $("session-list").children) li.classList.toggle("current", li.dataset.session === sessionId);
    if (!render) return;
    clearMessages();
    try {
      const detail = await api(`/api/sessions/${encodeURIComponent(sessionId)}`);
      if (detail.db) $("db-picker").value = detail.db;
      for (const record of detail.messages) TurnView.fromRecord(sessionId, record);
      if (!detail.messages.length) $("empty").hidden = false;
      scrollToEnd(true);
    } catch (err) {
      state.sessionId = null;
      banner(err.error ? `${err.error.message} ${err.error.hint || ""}` : String(err));
    }
  }

  // ---- pickers, key, layout --------------------------------------------------------------------
  async function loadPickers() {
    const [databases, models] = await Promise.all([api("/api/databases"), api("/api/models")]);
    const dbPicker = $("db-picker");
    dbPicker.replaceChildren(...databases.map((d) => el("option", { value: d.name, text: d.name, title: d.description || d.dialect })));
    const savedDb = localStorage.getItem("sqlsage.db");
    dbPicker.value = databases.some((d) => d.name === savedDb) ? savedDb : (databases.find((d) => d.default) || databases[0] || {}).name || "";
    const modelPicker = $("model-picker");
    modelPicker.replaceChildren(...models.models.map((m) => el("option", { value: m, text: m })));
    const savedModel = localStorage.getItem("sqlsage.model");
    modelPicker.value = models.models.includes(savedModel) ? savedModel : models.default;
  }

  function askForKey() {
    const dialog = $("key-dialog");
    if (!dialog.open) dialog.showModal();
  }

  function closeSidebar() {
    $("sidebar").classList.remove("open");
    $("toggle-sessions").setAttribute("aria-expanded", "false");
  }

  async function start() {
    // The session to restore is the one in the URL at load: a question sent before the
    // pickers and the list arrive sets #session= itself, and its running turn must stay.
    const match = location.hash.match(/session=([^&]+)/);
    try {
      state.info = await (await fetch("/api/info")).json();
    } catch (_) {
      banner("The server is not answering. Reload when it is back.");
      return;
    }
    $("key-button").hidden = !state.info.auth_required;
    if (state.info.auth_required && !state.key) { askForKey(); return; }
    try { await loadPickers(); } catch (err) { banner(err.error ? err.error.message : String(err)); }
    await loadSessions();
    if (match && !state.running && !state.sessionId) await selectSession(decodeURIComponent(match[1]), true);
  }

  $("composer").addEventListener("submit", (e) => { e.preventDefault(); ask($("question").value); });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ask($("question").value); }
  });
  $("question").addEventListener("input", () => composerError(""));
  $("new-session").addEventListener("click", () => { newSession(); closeSidebar(); });
  for (const button of document.querySelectorAll(".suggestion")) button.addEventListener("click", () => ask(button.textContent));
  $("db-picker").addEventListener("change", (e) => localStorage.setItem("sqlsage.db", e.target.value));
  $("model-picker").addEventListener("change", (e) => localStorage.setItem("sqlsage.model", e.target.value));
  $("key-button").addEventListener("click", askForKey);
  $("key-form").addEventListener("submit", () => {
    state.key = $("key-input").value.trim();
    localStorage.setItem(KEY_STORE, state.key);
    start();
  });
  $("close-sessions").addEventListener("click", () => { closeSidebar(); $("toggle-sessions").focus(); });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && $("sidebar").classList.contains("open")) { closeSidebar(); $("toggle-sessions").focus(); }
  });
  $("toggle-sessions").addEventListener("click", () => {
    const open = $("sidebar").classList.toggle("open");
    $("toggle-sessions").setAttribute("aria-expanded", String(open));
  });
  start();
})();
