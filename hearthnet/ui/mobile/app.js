// The phone page: Ask (a streamed answer), Chat and Market, through /mobile/api/ (the node's bus).
"use strict";
const $ = (id) => document.getElementById(id);
const showError = (text) => { $("error").textContent = text || ""; };
const errorLine = hearthAsk.errorLine;

async function getJSON(path, options) {
  const r = await fetch(path, options);
  const body = await r.json();
  if (!r.ok) throw body;
  return body;
}

async function loadStatus() {
  try {
    const s = await getJSON("/mobile/api/status");
    $("name").textContent = s.name;
    $("where").textContent = `${s.community || "no community yet"} · ${s.profile} · ${s.emergency}`;
    document.body.classList.toggle("emergency", s.emergency === "offline");
  } catch (e) { showError(errorLine(e)); }
}

async function loadCorpora() {
  try {
    for (const name of (await getJSON("/mobile/api/corpora")).corpora) {
      const o = document.createElement("option");
      o.value = name; o.textContent = name;
      $("corpus").append(o);
    }
  } catch (e) { /* no rag on the mesh: the model alone */ }
}

function ask(ev) {
  ev.preventDefault();
  return hearthAsk.ask($("question").value, $("corpus").value, {answer: $("answer"), meta: $("answer-meta"), error: $("error")});
}

async function loadMarket(ev) {
  if (ev) ev.preventDefault();
  showError("");
  try {
    const {posts} = await getJSON("/mobile/api/market?q=" + encodeURIComponent($("q").value));
    $("posts").replaceChildren(...posts.map((p) => {
      const li = document.createElement("li");
      const cat = document.createElement("div"); cat.className = "cat"; cat.textContent = p.category;
      const title = document.createElement("strong"); title.textContent = p.title;
      const body = document.createElement("div"); body.textContent = p.body;
      li.append(cat, title, body);
      li.dataset.postId = p.post_id;
      return li;
    }));
  } catch (e) { showError(errorLine(e)); }
}

async function post(ev) {
  ev.preventDefault();
  showError("");
  try {
    await getJSON("/mobile/api/market", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({category: $("category").value, title: $("title").value, body: $("body").value})});
    $("title").value = ""; $("body").value = "";
    await loadMarket();
  } catch (e) { showError(errorLine(e)); }
}

async function loadChat() {
  showError("");
  const peer = $("peer").value;
  try {
    const {people, messages} = await getJSON("/mobile/api/chat?peer=" + encodeURIComponent(peer));
    $("peer").replaceChildren(new Option("choose someone", ""), ...people.map((p) =>
      new Option(p.name + (p.unread ? ` · ${p.unread} new` : ""), p.node_id, false, p.node_id === peer)));
    $("messages").replaceChildren(...messages.map((m) => {
      const li = document.createElement("li");
      li.className = m.mine ? "mine" : "theirs";
      const meta = document.createElement("div"); meta.className = "muted";
      meta.textContent = `${m.mine ? "you" : "them"} · ${m.at} · ${m.state}`;
      const text = document.createElement("div"); text.textContent = m.text;
      li.append(meta, text);
      return li;
    }));
  } catch (e) { showError(errorLine(e)); }
}

async function send(ev) {
  ev.preventDefault();
  showError("");
  if (!$("peer").value) { showError("choose someone to talk to first"); return; }
  try {
    await getJSON("/mobile/api/chat", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({to: $("peer").value, text: $("message").value})});
    $("message").value = "";
    await loadChat();
  } catch (e) { showError(errorLine(e)); }
}

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    for (const other of document.querySelectorAll("nav button")) other.classList.toggle("on", other === b);
    for (const s of document.querySelectorAll("main section")) s.hidden = s.id !== b.dataset.view;
    if (b.dataset.view === "market") loadMarket();
    if (b.dataset.view === "chat") loadChat();
  });
}
$("ask-form").addEventListener("submit", ask);
$("market-search").addEventListener("submit", loadMarket);
$("market-post").addEventListener("submit", post);
$("peer").addEventListener("change", loadChat);
$("chat-form").addEventListener("submit", send);
loadStatus(); loadCorpora();
setInterval(loadStatus, 15000);
