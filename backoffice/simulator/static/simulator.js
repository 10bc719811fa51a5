// The simulator's chat page: the customer's side of one WhatsApp chat, polling for the bot's messages.
"use strict";

const POLL_MS = 700;
const $ = (selector) => document.querySelector(selector);
const view = { key: "", seq: 0, bubbles: new Map() };

function chat() {
  return {
    phone_number_id: $("#store").value,
    wa_id: $("#phone").value.replace(/\D/g, ""),
    name: $("#name").value.trim(),
  };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== ""));
  return node;
}

function notice(text) {
  $("#messages").append(el("div", { class: "notice" }, text));
  scrollDown();
}

function scrollDown() {
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

async function send(type, fields) {
  try {
    const response = await fetch("/simulator/api/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...chat(), type, ...fields }),
    });
    const answer = await response.json();
    if (!response.ok) notice(answer.error);
    else if (answer.status !== 200) notice(`The connector answered HTTP ${answer.status}`);
  } catch (error) {
    notice(`Could not reach the back office: ${error}`);
  }
  poll();
}

function mediaLink(kind, media) {
  const href = media.link || `/simulator/media/${encodeURIComponent(media.id)}`;
  const label = media.filename || media.caption || kind;
  const link = el("a", { href, target: "_blank", rel: "noopener" }, kind === "image" ? el("img", { src: href, alt: label }) : `File: ${label}`);
  return el("div", {}, link, kind === "image" && media.caption ? el("div", {}, media.caption) : null);
}

function replyButtons(record, action) {
  return el("div", { class: "actions" }, ...action.buttons.map((button) => el("button", {
    type: "button", class: "reply", "data-id": button.reply.id,
    onclick: () => send("button_reply", { button_reply: button.reply, context_id: record.id }),
  }, button.reply.title)));
}

function listMenu(record, action) {
  const rows = el("div", { class: "rows", hidden: "" });
  for (const section of action.sections) {
    if (section.title) rows.append(el("h4", {}, section.title));
    for (const row of section.rows) {
      rows.append(el("button", {
        type: "button", "data-id": row.id,
        onclick: () => send("list_reply", { list_reply: row, context_id: record.id }),
      }, row.title, row.description ? el("small", {}, row.description) : null));
    }
  }
  const open = el("button", { type: "button", class: "menu", onclick: () => { rows.hidden = !rows.hidden; } }, `☰ ${action.button}`);
  return el("div", {}, el("div", { class: "actions" }, open), rows);
}

function interactive(record, content) {
  const action = content.action;
  const parts = [
    content.header && content.header.text ? el("div", { class: "header" }, content.header.text) : null,
    el("div", {}, content.body.text),
    content.footer ? el("div", { class: "footer" }, content.footer.text) : null,
  ];
  if (content.type === "button") parts.push(replyButtons(record, action));
  if (content.type === "list") parts.push(listMenu(record, action));
  if (content.type === "cta_url") {
    parts.push(el("div", { class: "actions" }, el("a", { href: action.parameters.url, target: "_blank", rel: "noopener" }, action.parameters.display_text)));
  }
  if (content.type === "location_request_message") {
    parts.push(el("div", { class: "actions" }, el("button", { type: "button", onclick: shareLocation }, "Send location")));
  }
  return parts;
}

function content(record) {
  const message = record.message;
  const type = message.type || "text";
  const body = message[type];
  switch (type) {
    case "text": return [body.body];
    case "interactive":
      if (body.type === "button_reply") return [body.button_reply.title];
      if (body.type === "list_reply") return [body.list_reply.title, body.list_reply.description ? el("div", { class: "footer" }, body.list_reply.description) : null];
      return interactive(record, body);
    case "location": return [`Location: ${[body.name, body.address].filter(Boolean).join(" — ")} (${body.latitude}, ${body.longitude})`];
    case "template": {
      const values = (body.components || []).flatMap((c) => (c.parameters || []).map((p) => p.text || JSON.stringify(p)));
      return [el("div", { class: "kind" }, `Template · ${body.name} (${body.language.code})`), values.join(" · ")];
    }
    case "reaction": return [`Reacted ${body.emoji}`];
    case "image": case "document": case "audio": case "video": case "sticker": return [mediaLink(type, body)];
    default: return [el("div", { class: "kind" }, type), JSON.stringify(body, null, 1)];
  }
}

function ticks(record) {
  const marks = { accepted: "○", sent: "✓", delivered: "✓✓", read: "✓✓", received: "✓✓", failed: "⚠" };
  const failure = record.errors.length ? ` ${record.errors[0].code} ${record.errors[0].title}` : "";
  return el("span", { class: `ticks ${record.status}`, title: record.status }, marks[record.status] + failure);
}

function bubble(record) {
  const time = new Date(record.timestamp * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return el("div", { class: `bubble ${record.direction}`, "data-n": record.n },
    ...content(record), el("div", { class: "meta" }, `${time} `, ticks(record)));
}

function show(record) {
  const old = view.bubbles.get(record.id);
  if (old) {  // a status changed: only the ticks move, so an open list menu stays open
    old.querySelector(".ticks").replaceWith(ticks(record));
    return;
  }
  const node = bubble(record);
  view.bubbles.set(record.id, node);
  $("#messages").append(node);
  scrollDown();
}

async function poll() {
  const { phone_number_id, wa_id } = chat();
  const key = `${phone_number_id}:${wa_id}`;
  if (key !== view.key) {
    Object.assign(view, { key, seq: 0, bubbles: new Map() });
    $("#messages").replaceChildren();
    $("#chat-title").textContent = $("#store").selectedOptions[0]?.textContent || "";
  }
  if (!phone_number_id || !wa_id) return;
  try {
    const query = new URLSearchParams({ phone_number_id, wa_id, after: view.seq });
    const answer = await (await fetch(`/simulator/api/messages?${query}`)).json();
    if (key !== view.key) return;
    answer.messages.forEach(show);
    view.seq = Math.max(view.seq, answer.seq);
    $("#typing").hidden = !answer.typing;
  } catch (error) {
    // the back office restarts now and then; the next poll catches up
  }
}

function shareLocation() {
  send("location", {
    location: {
      latitude: $("#latitude").value, longitude: $("#longitude").value,
      name: $("#place-name").value.trim(), address: $("#place-address").value.trim(),
    },
  });
}

$("#composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("#text").value;
  if (!text.trim()) return;
  $("#text").value = "";
  send("text", { text });
});
$("#send-location").addEventListener("click", shareLocation);
$("#store").addEventListener("change", poll);
poll();
setInterval(poll, POLL_MS);
