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

// WhatsApp's formatting as it shows in the app: ```monospace```, `code`, *bold*, _italic_, ~strike~.
// A marker counts only at a word's edge (not inside snake_case or 2*3*4) and never spans a line.
// Built as DOM nodes from text, never as HTML, so nothing in a message can inject markup.
const MONOSPACE = /```([\s\S]+?)```/g;
const INLINE = /(?<![\p{L}\p{N}])([*_~`])(?!\s|\1)([^\n]*?[^\s])\1(?![\p{L}\p{N}])/gu;
const STYLES = { "*": "strong", "_": "em", "~": "s", "`": "code" };

function formatted(text) {
  const nodes = [];
  let last = 0;
  for (const match of String(text || "").matchAll(MONOSPACE)) {
    nodes.push(...inline(text.slice(last, match.index)), el("code", { class: "mono" }, match[1]));
    last = match.index + match[0].length;
  }
  nodes.push(...inline(String(text || "").slice(last)));
  return nodes;
}

function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const tag = STYLES[match[1]];
    nodes.push(text.slice(last, match.index), el(tag, {}, ...(tag === "code" ? [match[2]] : inline(match[2]))));
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  return nodes.filter((node) => node !== "");
}

// Every time on the page is the business's (the selected store's time zone), labelled in the header.
function zone() {
  return $("#store").selectedOptions[0]?.dataset.timezone || "America/Mexico_City";
}

function zoneLabel(name) {
  return `times: ${name.split("/").pop().replace(/_/g, " ")} (${name})`;
}

function clock(seconds, withDate = false) {
  const options = { timeZone: zone(), hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withDate) Object.assign(options, { year: "numeric", month: "short", day: "numeric", second: "2-digit", timeZoneName: "short" });
  return new Intl.DateTimeFormat("en-GB", options).format(new Date(seconds * 1000));
}

// The profile name, phone and store survive a reload.
const REMEMBERED = ["name", "phone", "store"];

function remember() {
  for (const field of REMEMBERED) localStorage.setItem(`comanda.simulator.${field}`, $(`#${field}`).value);
}

function recall() {
  for (const field of REMEMBERED) {
    const value = localStorage.getItem(`comanda.simulator.${field}`);
    const input = $(`#${field}`);
    if (value === null) continue;
    if (input.tagName === "SELECT" && ![...input.options].some((option) => option.value === value)) continue;
    input.value = value;
  }
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
  const caption = media.caption ? el("div", { class: "caption" }, ...formatted(media.caption)) : null;
  if (kind === "image" || kind === "sticker") {
    return el("div", {}, el("a", { href, target: "_blank", rel: "noopener" }, el("img", { src: href, alt: label })), caption);
  }
  if (kind === "audio") {
    return el("div", { class: "audio" }, el("div", { class: "kind" }, media.voice ? "🎤 Voice note" : "🎵 Audio"), el("audio", { controls: "", src: href }));
  }
  return el("div", {}, el("a", { href, target: "_blank", rel: "noopener", class: "file" }, `📄 ${label}`), caption);
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
    content.header && content.header.text ? el("div", { class: "header" }, ...formatted(content.header.text)) : null,
    el("div", {}, ...formatted(content.body.text)),
    content.footer ? el("div", { class: "footer" }, ...formatted(content.footer.text)) : null,
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
    case "text": return formatted(body.body);
    case "interactive":
      if (body.type === "button_reply") return [body.button_reply.title];
      if (body.type === "list_reply") return [body.list_reply.title, body.list_reply.description ? el("div", { class: "footer" }, body.list_reply.description) : null];
      return interactive(record, body);
    case "location": return [`Location: ${[body.name, body.address].filter(Boolean).join(" — ")} (${body.latitude}, ${body.longitude})`];
    case "template": {
      const values = (body.components || []).flatMap((c) => (c.parameters || []).map((p) => p.text || JSON.stringify(p)));
      return [el("div", { class: "kind" }, `Template · ${body.name} (${body.language.code})`), ...formatted(values.join(" · "))];
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
  const time = el("time", { datetime: new Date(record.timestamp * 1000).toISOString(), title: clock(record.timestamp, true) }, clock(record.timestamp));
  return el("div", { class: `bubble ${record.direction}`, "data-n": record.n },
    ...content(record), el("div", { class: "meta" }, time, " ", ticks(record)));
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
    $("#zone").textContent = zoneLabel(zone());
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

function mediaKind(file, choice) {
  if (choice !== "auto") return choice;
  if (/^image\/(jpeg|png)$/.test(file.type)) return "image";
  if (file.type.startsWith("audio/")) return "voice";
  return "document";
}

async function sendMedia() {
  const file = $("#media-file").files[0];
  if (!file) return notice("Choose a file first");
  const kind = mediaKind(file, $("#media-kind").value);
  const form = new FormData();
  form.append("file", file);
  try {
    const upload = await fetch("/simulator/api/media", { method: "POST", body: form });
    const media = await upload.json();
    if (!upload.ok) return notice(media.error);
    const caption = $("#media-caption").value.trim();
    await send(kind === "voice" ? "audio" : kind, {
      media_id: media.id,
      ...(kind === "voice" || kind === "audio" ? { voice: kind === "voice" } : caption ? { caption } : {}),
    });
    $("#media-file").value = "";
    $("#media-caption").value = "";
  } catch (error) {
    notice(`Could not send the file: ${error}`);
  }
}

async function resetChats() {
  const { wa_id } = chat();
  if (!wa_id) return;
  const answer = await fetch(`/simulator/api/chats?${new URLSearchParams({ wa_id })}`, { method: "DELETE" });
  view.key = "";  // the next poll starts the chat afresh
  await poll();
  notice(answer.ok ? `Cleared the chats of +${wa_id}` : (await answer.json()).error);
}

$("#composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("#text").value;
  if (!text.trim()) return;
  $("#text").value = "";
  send("text", { text });
});
$("#send-location").addEventListener("click", shareLocation);
$("#send-media").addEventListener("click", sendMedia);
$("#reset").addEventListener("click", resetChats);
for (const field of REMEMBERED) for (const event of ["input", "change"]) $(`#${field}`).addEventListener(event, remember);
$("#store").addEventListener("change", poll);
recall();
poll();
setInterval(poll, POLL_MS);
