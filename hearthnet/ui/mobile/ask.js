// One client for a streamed answer from the mesh, used by the phone page and by the Gradio Ask
// tab: POST /mobile/api/ask, read its server-sent events, write the words into `out.answer` as
// they come. The Ask tab calls it straight from the click (no Gradio queue round trip: that
// cost the first token about 70 ms).
"use strict";
(() => {
  const errorLine = (e) => e && e.error ? `error[${e.error.code}]: ${e.error.message}` : String(e);

  const describe = (d) => {
    const who = d.node === "?" ? "no node answered" : `answered by ${d.node}` + (d.name ? ` (${d.name})` : "");
    const cites = (d.citations || []).map((c) => `[${c.n}] ${c.title}` + (c.section ? ` — ${c.section}` : "")).join(" · ");
    return `${who} in ${(d.ms / 1000).toFixed(1)} s` + (d.model ? ` · ${d.model}` : "") + (cites ? ` · ${cites}` : "");
  };

  // out: {answer, meta, error} elements. Resolves when the answer is complete (or failed).
  async function ask(question, corpus, out) {
    out.error.textContent = "";
    out.answer.textContent = "";
    out.meta.textContent = "asking the mesh…";
    let r;
    try {
      r = await fetch("/mobile/api/ask", {method: "POST", headers: {"content-type": "application/json"},
        body: JSON.stringify({question: question || "", corpus: corpus || null})});
      if (!r.ok) throw await r.json();
    } catch (e) {
      out.error.textContent = e instanceof TypeError ? "error[unavailable]: the node did not answer" : errorLine(e);
      out.meta.textContent = "";
      return;
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {  // one event per blank-line-separated block
        const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const event = (chunk.match(/^event: (.*)$/m) || [])[1];
        const data = JSON.parse((chunk.match(/^data: (.*)$/m) || [, "{}"])[1]);
        if (event === "token") out.answer.textContent += data.t;
        else if (event === "restart") out.answer.textContent = "";  // another node starts the answer again
        else if (event === "done") {
          if (data.error) out.error.textContent = data.error;
          out.meta.textContent = describe(data);
        }
      }
    }
  }

  window.hearthAsk = {ask, errorLine, describe};
})();
