// The demo page of the Slack stand-in: shows the workspace as Slack would and plays Slack towards the app.
// Reads GET /_control/page (polling /_control/version); every click, command and modal submit goes through
// POST /_control/drive/..., where the stand-in sends the app a request signed exactly as Slack signs it.
"use strict";

const POLL_MS = 600;
const RETRY_MS = 2000;          // polling while the stand-in does not answer
const view = {
  user: new URLSearchParams(location.search).get("user") || localStorage.getItem("syncbot-demo-user") || "",
  channel: new URLSearchParams(location.search).get("channel") || "",
  surface: new URLSearchParams(location.search).get("tab") === "home" ? "home" : "channel",
  appTab: "home",  // the app's tabs: its Home, or its Messages (the DMs it sent the acting user)
};
let state = null;
let shownVersion = -1;
let loading = false;
const expanded = new Set();     // thread parents whose replies are shown
const dismissed = new Set();    // ephemerals the user dismissed
const signatures = new Map();   // element key -> JSON of what it shows (unchanged elements are kept as they are)
const pendingErrors = {};       // view id -> {block_id: error} from the app's response_action "errors"

const $ = (sel) => document.querySelector(sel);

// ------------------------------------------------------------------------------------------------ helpers
function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
    "'": "&#39;"}[c]));
}

function decodeSlack(text) {
  // Slack escapes &, < and > in message text; undo that before escaping for HTML.
  return String(text ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : "#";
}

// A message's time, in the acting user's time zone (users.list's tz), as Slack shows every time to its reader:
// the same zone as the date tokens in the message (dateToken), never the browser's.
function timeOf(ts) {
  const d = new Date(parseFloat(ts) * 1000);
  const tz = userById(view.user)?.tz || undefined;
  try { return d.toLocaleTimeString("en-US", {hour: "numeric", minute: "2-digit", timeZone: tz}); }
  catch { return d.toLocaleTimeString("en-US", {hour: "numeric", minute: "2-digit"}); }
}

function userById(id) {
  return (state?.users || []).find((u) => u.id === id);
}

function displayName(id) {
  const u = userById(id);
  if (!u) return id || "someone";
  return u.profile?.display_name || u.real_name || u.name || id;
}

function roleOf(u) {
  if (u.is_primary_owner) return "Primary Owner";
  if (u.is_owner) return "Owner";
  if (u.is_admin) return "Admin";
  return "Member";
}

// Emoji as small inline pictures (a machine without an emoji font still shows them).
const CIRCLE = (fill, stroke) =>
  `<svg class="emoji" viewBox="0 0 20 20"><circle cx="10" cy="10" r="8" fill="${fill}" stroke="${stroke}"/></svg>`;
const BOX = (fill, path) =>
  `<svg class="emoji" viewBox="0 0 20 20"><rect x="1" y="1" width="18" height="18" rx="4" fill="${fill}"/>${path}</svg>`;
const EMOJI = {
  white_check_mark: BOX("#2eb67d", '<path d="M5 10.5l3.2 3.2L15 7" fill="none" stroke="#fff" stroke-width="2.4" ' +
    'stroke-linecap="round" stroke-linejoin="round"/>'),
  heavy_check_mark: BOX("#2eb67d", '<path d="M5 10.5l3.2 3.2L15 7" fill="none" stroke="#fff" stroke-width="2.4"/>'),
  red_circle: CIRCLE("#e01e5a", "#c0164b"),
  large_yellow_circle: CIRCLE("#ecb22e", "#d49b14"),
  large_green_circle: CIRCLE("#2eb67d", "#1f9a66"),
  white_circle: CIRCLE("#fff", "#9a9a9a"),
  x: BOX("#e01e5a", '<path d="M6 6l8 8M14 6l-8 8" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  information_source: BOX("#1d9bd1", '<circle cx="10" cy="5.6" r="1.5" fill="#fff"/>' +
    '<path d="M10 9v6" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/>'),
  warning: '<svg class="emoji" viewBox="0 0 20 20"><path d="M10 2L19 18H1z" fill="#ecb22e"/>' +
    '<path d="M10 8v4.5" stroke="#1d1c1d" stroke-width="2" stroke-linecap="round"/>' +
    '<circle cx="10" cy="15.2" r="1.1" fill="#1d1c1d"/></svg>',
  hourglass_flowing_sand: BOX("#f4ede4", '<path d="M6 3h8M6 17h8M7 3c0 4 6 4 6 7s-6 3-6 7M13 3c0 4-6 4-6 7s6 3 6 7"' +
    ' fill="none" stroke="#8a5a00" stroke-width="1.5"/><path d="M8 15.5h4l-2-2.5z" fill="#d49b14"/>'),
  arrows_counterclockwise: BOX("#1d9bd1", '<path d="M14.5 7.5A5 5 0 1 0 15 12" fill="none" stroke="#fff" ' +
    'stroke-width="2" stroke-linecap="round"/><path d="M15.5 3.5v4.5H11" fill="none" stroke="#fff" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>'),
  no_entry: CIRCLE("#e01e5a", "#c0164b").replace("</svg>", '<path d="M5.5 10h9" stroke="#fff" stroke-width="2.6" ' +
    'stroke-linecap="round"/></svg>'),
  link: BOX("#e8f1fa", '<path d="M8.5 11.5l3-3M7.5 9.5l-1.8 1.8a2.3 2.3 0 0 0 3.2 3.2l1.8-1.8M12.5 10.5l1.8-1.8a2.3 ' +
    '2.3 0 0 0-3.2-3.2L9.3 7.3" fill="none" stroke="#1264a3" stroke-width="1.6" stroke-linecap="round"/>'),
};
const BOT_ICON = '<svg viewBox="0 0 24 24"><path d="M19 8.5A7.5 7.5 0 0 0 5.3 7M5 15.5A7.5 7.5 0 0 0 18.7 17" ' +
  'fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/><path d="M20 3.5v5h-5M4 20.5v-5h5" ' +
  'fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>';

const LOCK = '<svg class="emoji" viewBox="0 0 20 20"><rect x="4" y="9" width="12" height="9" rx="2" ' +
  'fill="currentColor"/><path d="M7 9V6.5a3 3 0 0 1 6 0V9" fill="none" stroke="currentColor" stroke-width="2"/></svg>';

function emoji(name) {
  const svg = EMOJI[name];
  return svg ? svg.replace('<svg class="emoji"', `<svg class="emoji" data-emoji="${name}" role="img" ` +
    `aria-label=":${name}:"`) : `<span class="emoji-text">:${esc(name)}:</span>`;
}

function emojify(html) {
  return html.replace(/:([a-z0-9_+-]+):/g, (all, name) => (EMOJI[name] ? emoji(name) : all));
}

// ------------------------------------------------------------------------------------------------ mrkdwn
function special(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) {
    return `<span class="mention">@${esc(label || displayName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("#")) {
    const ch = (state?.channels || []).find((c) => c.id === target.slice(1));
    return `<span class="mention">#${esc(label || (ch ? ch.name : target.slice(1)))}</span>`;
  }
  if (target.startsWith("!date^")) {
    const parts = target.split("^");
    return esc(slackDate(parseInt(parts[1], 10), parts[2] || "{date_short} {time}", label || ""));
  }
  if (target.startsWith("!")) {
    return `<span class="mention">@${esc(label || target.slice(1))}</span>`;
  }
  const url = decodeSlack(target);
  return `<a href="${esc(safeUrl(url))}" target="_blank" rel="noopener">${esc(decodeSlack(label || url))}</a>`;
}

// Slack's date formatting, <!date^UNIX^{tokens}|fallback>, drawn as Slack draws it: in the reader's own time zone
// (the acting user's tz from users.list), each {token} replaced; the fallback when the time cannot be read.
// https://docs.slack.dev/messaging/formatting-message-text ("Date formatting").
function slackDate(seconds, tokens, fallback) {
  const when = new Date(seconds * 1000);
  if (!Number.isFinite(seconds) || isNaN(when)) return fallback;
  const tz = userById(view.user)?.tz || undefined;
  const fmt = (opts) => { try { return when.toLocaleString("en-US", {timeZone: tz, ...opts}); }
    catch { return when.toLocaleString("en-US", opts); } };
  const dayKey = (d) => { try { return d.toLocaleDateString("en-CA", {timeZone: tz}); }
    catch { return d.toLocaleDateString("en-CA"); } };
  const now = new Date();
  const shift = (days) => dayKey(new Date(now.getTime() + days * 86400000));
  const relative = {[shift(-1)]: "yesterday", [shift(0)]: "today", [shift(1)]: "tomorrow"}[dayKey(when)];
  const ordinal = (n) => n + (["th", "st", "nd", "rd"][(n % 100 - 20) % 10] || ["th", "st", "nd", "rd"][n % 100] || "th");
  const day = parseInt(fmt({day: "numeric"}), 10);
  const long = `${fmt({month: "long"})} ${ordinal(day)}, ${fmt({year: "numeric"})}`;
  const values = {
    date_num: dayKey(when),
    date: long,
    date_short: fmt({month: "short", day: "numeric", year: "numeric"}),
    date_long: `${fmt({weekday: "long"})}, ${long}`,
    time: fmt({hour: "numeric", minute: "2-digit"}),
    time_secs: fmt({hour: "numeric", minute: "2-digit", second: "2-digit"}),
  };
  values.date_pretty = relative || values.date;
  values.date_short_pretty = relative || values.date_short;
  values.date_long_pretty = relative || values.date_long;
  const out = tokens.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
  return out.charAt(0).toUpperCase() + out.slice(1);
}

// A code block keeps its links, as Slack's does (a rich_text_preformatted holds text and link elements).
function preformatted(code) {
  return code.split(/(<https?:\/\/[^<>\n]+>)/i)
    .map((part, i) => (i % 2 ? special(part.slice(1, -1)) : esc(decodeSlack(part)))).join("");
}

function mrkdwn(raw) {
  const keep = [];
  const hold = (html) => `\u0000${keep.push(html) - 1}\u0000`;
  let text = String(raw ?? "");
  text = text.replace(/```([\s\S]*?)```/g, (m, code) => hold(`<pre>${preformatted(code)}</pre>`));
  text = text.replace(/`([^`\n]+)`/g, (m, code) => hold(`<code>${esc(decodeSlack(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (m, inner) => hold(special(inner)));
  let html = esc(decodeSlack(text));
  html = html.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1<b>$2</b>");
  html = html.replace(/(^|[^\w])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
  html = html.replace(/(^|[^\w~])~(?!\s)([^~\n]+?)~(?!\w)/g, "$1<s>$2</s>");
  html = html.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  html = emojify(html).replace(/\n/g, "<br>");
  return html.replace(/\u0000(\d+)\u0000/g, (m, i) => keep[parseInt(i, 10)]);
}

function textObj(obj) {
  if (!obj) return "";
  if (obj.type === "mrkdwn") return mrkdwn(obj.text);
  return emojify(esc(obj.text)).replace(/\n/g, "<br>");
}

// ------------------------------------------------------------------------------------------------ Block Kit
function attrs(el) {
  let out = ` data-action-id="${esc(el.action_id || "")}"`;
  if (el.value !== undefined) out += ` data-value="${esc(el.value)}"`;
  if (el.url) out += ` data-url="${esc(el.url)}"`;
  if (el.confirm) out += ` data-confirm="${esc(JSON.stringify(el.confirm))}"`;
  return out;
}

function element(el) {
  if (!el) return "";
  if (el.type === "button") {
    const cls = ["bk-btn", el.style || "", el.url ? "link" : ""].join(" ").trim();
    return `<button type="button" class="${cls}"${attrs(el)}>${textObj(el.text)}</button>`;
  }
  if (el.type === "static_select" || el.type === "overflow" || el.type === "radio_buttons") {
    const options = el.options || (el.option_groups || []).flatMap((g) => g.options || []);
    const first = el.type === "overflow" ? "\u22ef" : (el.placeholder ? el.placeholder.text : "Choose\u2026");
    return `<select class="bk-select"${attrs(el)} data-options="${esc(JSON.stringify(options))}">` +
      `<option value="">${esc(first)}</option>` +
      options.map((o) => `<option value="${esc(o.value)}">${esc(o.text?.text)}</option>`).join("") + "</select>";
  }
  if (el.type === "image") return `<img src="${esc(safeUrl(el.image_url || ""))}" alt="${esc(el.alt_text)}">`;
  if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${textObj(el)}</span>`;
  return `<span class="bk-unknown">[${esc(el.type)}]</span>`;
}

function inputElement(block, el, values, initial) {
  const bid = esc(block.block_id || "");
  const aid = esc(el.action_id || "");
  const name = `data-block-id="${bid}" data-action-id="${aid}" data-type="${esc(el.type)}"`;
  const current = values?.[block.block_id]?.[el.action_id];
  const value = current?.value ?? el.initial_value ?? initial ?? "";
  if (el.type === "plain_text_input" || el.type === "email_text_input" || el.type === "url_text_input") {
    const ph = el.placeholder ? ` placeholder="${esc(el.placeholder.text)}"` : "";
    if (el.multiline) return `<textarea ${name}${ph}>${esc(value)}</textarea>`;
    return `<input type="text" ${name}${ph} value="${esc(value)}">`;
  }
  if (el.type === "number_input") return `<input type="number" ${name} value="${esc(value)}">`;
  if (el.type === "static_select") {
    const options = el.options || (el.option_groups || []).flatMap((g) => g.options || []);
    const chosen = current?.selected_option?.value ?? el.initial_option?.value ?? "";
    return `<select ${name} data-options="${esc(JSON.stringify(options))}"><option value="">` +
      `${esc(el.placeholder?.text || "Choose\u2026")}</option>` + options.map((o) =>
        `<option value="${esc(o.value)}"${o.value === chosen ? " selected" : ""}>${esc(o.text?.text)}</option>`)
        .join("") + "</select>";
  }
  return `<span class="bk-unknown">[${esc(el.type)} input]</span>`;
}

function richText(block) {
  const inline = (els) => (els || []).map((e) => {
    if (e.type === "text") {
      let t = esc(e.text).replace(/\n/g, "<br>");
      if (e.style?.code) t = `<code>${t}</code>`;
      if (e.style?.bold) t = `<b>${t}</b>`;
      if (e.style?.italic) t = `<i>${t}</i>`;
      if (e.style?.strike) t = `<s>${t}</s>`;
      return t;
    }
    if (e.type === "link") return `<a href="${esc(safeUrl(e.url))}" target="_blank">${esc(e.text || e.url)}</a>`;
    if (e.type === "emoji") return emoji(e.name);
    if (e.type === "user") return `<span class="mention">@${esc(displayName(e.user_id))}</span>`;
    return "";
  }).join("");
  return (block.elements || []).map((part) => {
    if (part.type === "rich_text_preformatted") return `<pre>${inline(part.elements)}</pre>`;
    if (part.type === "rich_text_quote") return `<blockquote>${inline(part.elements)}</blockquote>`;
    if (part.type === "rich_text_list") {
      const tag = part.style === "ordered" ? "ol" : "ul";
      return `<${tag}>${(part.elements || []).map((li) => `<li>${inline(li.elements)}</li>`).join("")}</${tag}>`;
    }
    return `<div>${inline(part.elements)}</div>`;
  }).join("");
}

function block(b, ctx) {
  switch (b.type) {
    case "header":
      return `<div class="bk-header">${textObj(b.text)}</div>`;
    case "section": {
      let main = b.text ? `<div class="bk-text">${textObj(b.text)}</div>` : "";
      if (b.fields) main += `<div class="bk-fields">${b.fields.map((f) => `<div class="bk-field">${textObj(f)}</div>`)
        .join("")}</div>`;
      const acc = b.accessory ? `<div class="bk-accessory">${element(b.accessory)}</div>` : "";
      return `<div class="bk-section" data-block-id="${esc(b.block_id || "")}"><div class="bk-section-main">${main}` +
        `</div>${acc}</div>`;
    }
    case "divider":
      return '<hr class="bk-divider">';
    case "context":
      return `<div class="bk-context">${(b.elements || []).map(element).join("")}</div>`;
    case "actions":
    case "context_actions":
      return `<div class="bk-actions" data-block-id="${esc(b.block_id || "")}">${(b.elements || []).map(element)
        .join("")}</div>`;
    case "image":
      return `<div class="bk-image">${b.title ? `<div class="bk-image-title">${textObj(b.title)}</div>` : ""}` +
        `<img src="${esc(safeUrl(b.image_url || ""))}" alt="${esc(b.alt_text)}"></div>`;
    case "input": {
      const err = ctx.errors?.[b.block_id];
      return `<div class="bk-input${err ? " has-error" : ""}"><label>${textObj(b.label)}` +
        `${b.optional ? ' <span class="optional">(optional)</span>' : ""}</label>` +
        inputElement(b, b.element || {}, ctx.values) +
        (b.hint ? `<div class="hint">${textObj(b.hint)}</div>` : "") +
        (err ? `<div class="error">${esc(err)}</div>` : "") + "</div>";
    }
    case "rich_text":
      return `<div class="bk-text">${richText(b)}</div>`;
    case "markdown":
      return `<div class="bk-text">${mrkdwn(b.text)}</div>`;
    default:
      return `<div class="bk-unknown">[${esc(b.type)} block]</div>`;
  }
}

function blocks(list, ctx) {
  return `<div class="blocks">${(list || []).map((b) => block(b, ctx || {})).join("")}</div>`;
}

const COLORS = {good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a"};

function attachment(a) {
  const color = COLORS[a.color] || (/^#?[0-9a-f]{3,6}$/i.test(a.color || "") ?
    (a.color.startsWith("#") ? a.color : `#${a.color}`) : "#dddddd");
  let body = "";
  if (a.pretext) body += `<div class="att-pretext">${mrkdwn(a.pretext)}</div>`;
  if (a.author_name) body += `<div class="att-footer">${esc(a.author_name)}</div>`;
  if (a.title) {
    body += a.title_link ? `<div class="att-title"><a href="${esc(safeUrl(a.title_link))}" target="_blank">` +
      `${esc(a.title)}</a></div>` : `<div class="att-title">${esc(a.title)}</div>`;
  }
  if (a.text) body += `<div class="bk-text">${mrkdwn(a.text)}</div>`;
  if (a.fields) {
    body += `<div class="bk-fields">${a.fields.map((f) => `<div class="bk-field"><b>${esc(f.title)}</b><br>` +
      `${mrkdwn(f.value)}</div>`).join("")}</div>`;
  }
  if (a.blocks) body += blocks(a.blocks, {});
  if (a.footer) body += `<div class="att-footer">${esc(a.footer)}</div>`;
  return `<div class="attachment" data-color="${esc(color)}"><div class="bar" style="background:${esc(color)}">` +
    `</div><div class="att-body">${body}</div></div>`;
}

// ------------------------------------------------------------------------------------------------ messages
function author(m) {
  const isBot = !!m.bot_id || m.user === state.team?.bot_user_id;
  const name = isBot ? (state.team?.bot_name || "syncbot") : displayName(m.user);
  const avatar = isBot ? `<div class="avatar bot">${BOT_ICON}</div>` :
    `<div class="avatar">${esc(name.slice(0, 1).toUpperCase())}</div>`;
  return {isBot, name, avatar};
}

function content(m) {
  let html = m.blocks && m.blocks.length ? blocks(m.blocks, {}) :
    `<div class="plain-text">${mrkdwn(m.text)}</div>`;
  if (m.attachments) html += m.attachments.map(attachment).join("");
  return html;
}

function messageHtml(m, inThread) {
  const who = author(m);
  const edited = m.edited_ts ? '<span class="edited">(edited)</span>' : "";
  let html = `${who.avatar}<div class="msg-body"><div class="meta"><span class="name">${esc(who.name)}</span>` +
    `${who.isBot ? '<span class="app-badge">APP</span>' : ""}<span class="time">${esc(timeOf(m.ts))}</span>` +
    `${edited}</div>${content(m)}`;
  const replies = m.replies || [];
  if (!inThread && replies.length) {
    const open = expanded.has(m.ts);
    html += `<button type="button" class="thread-link" data-thread="${esc(m.ts)}"><span class="mini-avatar"></span>` +
      `${replies.length} ${replies.length === 1 ? "reply" : "replies"}${open ? " \u25be" : " \u25b8"}</button>`;
    if (open) {
      html += `<div class="replies">${replies.map((r) =>
        `<div class="msg reply" data-ts="${esc(r.ts)}" data-surface="message">${messageHtml(r, true)}</div>`)
        .join("")}</div>`;
    }
  }
  return html + "</div>";
}

function ephemeralHtml(e) {
  const bot = `<div class="avatar bot">${BOT_ICON}</div>`;
  return `${bot}<div class="msg-body"><div class="only-you">Only visible to you \u00b7 ` +
    `<a href="#" data-dismiss="${esc(e.message_ts)}">Dismiss</a></div><div class="meta"><span class="name">` +
    `${esc(state.team?.bot_name || "syncbot")}</span><span class="app-badge">APP</span>` +
    `<span class="time">${esc(timeOf(e.message_ts))}</span></div>${content(e)}</div>`;
}

function renderMessages() {
  const box = $("#messages");
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const items = [];
  for (const m of state.messages) items.push({key: `m:${m.ts}`, ts: m.ts, kind: "message", data: m});
  for (const e of state.ephemerals) {
    if (!dismissed.has(e.message_ts)) items.push({key: `e:${e.message_ts}`, ts: e.message_ts, kind: "ephemeral", data: e});
  }
  items.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
  const wanted = new Set(items.map((i) => i.key));
  for (const el of [...box.querySelectorAll(":scope > .msg")]) {
    if (!wanted.has(el.dataset.key)) { el.remove(); signatures.delete(el.dataset.key); }
  }
  box.querySelector(":scope > .empty")?.remove();
  let added = false;
  let previous = null;
  for (const item of items) {
    let el = box.querySelector(`:scope > .msg[data-key="${CSS.escape(item.key)}"]`);
    const sig = JSON.stringify([item.data, expanded.has(item.ts), state.users.length]);
    if (!el) {
      el = document.createElement("div");
      el.className = `msg${item.kind === "ephemeral" ? " ephemeral" : ""}`;
      el.dataset.key = item.key;
      el.dataset.ts = item.ts;
      el.dataset.surface = item.kind;
      added = true;
    }
    if (signatures.get(item.key) !== sig) {
      const changed = signatures.has(item.key);
      el.innerHTML = item.kind === "ephemeral" ? ephemeralHtml(item.data) : messageHtml(item.data, false);
      signatures.set(item.key, sig);
      if (changed) { el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash"); }
    }
    const want = previous ? previous.nextSibling : box.firstChild;
    if (want !== el) box.insertBefore(el, want);
    previous = el;
  }
  if (!items.length) box.innerHTML = '<div class="empty">No messages yet. syncbot posts sync errors here.</div>';
  if (added && nearBottom) box.scrollTop = box.scrollHeight;
}

function renderHome() {
  const box = $("#home");
  for (const tab of document.querySelectorAll("[data-app-tab]")) {
    tab.classList.toggle("active", tab.dataset.appTab === view.appTab);
    if (tab.dataset.appTab === "messages") tab.textContent = `Messages${state.dm.length ? ` (${state.dm.length})` : ""}`;
  }
  if (view.appTab === "messages") {
    const sig = JSON.stringify(["dm", state.dm, state.users.length]);
    if (signatures.get("home") === sig) return;
    signatures.set("home", sig);
    box.innerHTML = state.dm.length ? state.dm.map((m) =>
      `<div class="msg" data-surface="dm" data-ts="${esc(m.ts)}">${messageHtml(m, false)}</div>`).join("") :
      '<div class="empty">No messages from syncbot yet: it writes here when work you started from the Home ' +
      "finishes, and with token reminders.</div>";
    return;
  }
  const sig = JSON.stringify(state.home);
  if (signatures.get("home") === sig) return;
  signatures.set("home", sig);
  box.innerHTML = state.home ? `<div data-surface="home" data-hash="${esc(state.home.hash)}">` +
    `${blocks(state.home.blocks, {})}</div>` :
    '<div class="empty">Opening syncbot\u2019s Home tab\u2026</div>';
}

function renderModal() {
  const backdrop = $("#modal-backdrop");
  const modal = state.modals[state.modals.length - 1];
  if (!modal) {
    if (!backdrop.dataset.confirm) { backdrop.hidden = true; delete backdrop.dataset.viewId; signatures.delete("modal"); }
    return;
  }
  const sig = JSON.stringify([modal.id, modal.hash, modal.blocks, pendingErrors[modal.id] || null]);
  if (signatures.get("modal") === sig && !backdrop.hidden) return;
  signatures.set("modal", sig);
  backdrop.dataset.viewId = modal.id;
  delete backdrop.dataset.confirm;
  const submit = modal.submit ? `<button type="button" class="bk-btn primary" data-modal="submit">` +
    `${esc(modal.submit.text)}</button>` : "";
  $("#modal").innerHTML = `<div class="modal-head"><div class="avatar bot">${BOT_ICON}</div>` +
    `<div class="modal-title">${esc(modal.title?.text || "")}</div>` +
    `<button type="button" class="modal-x" data-modal="close" aria-label="Close">\u00d7</button></div>` +
    `<div class="modal-body" data-surface="modal" data-view-id="${esc(modal.id)}">` +
    `${blocks(modal.blocks, {values: modal.state?.values, errors: pendingErrors[modal.id]})}</div>` +
    `<div class="modal-foot"><button type="button" class="bk-btn" data-modal="close">` +
    `${esc(modal.close?.text || "Cancel")}</button>${submit}</div>`;
  backdrop.hidden = false;
}

function renderChrome() {
  const picker = $("#user-picker");
  const people = state.users.filter((u) => !u.is_bot && !u.deleted);
  const options = people.map((u) => `<option value="${esc(u.id)}">${esc(u.real_name)} (${esc(roleOf(u))})</option>`)
    .join("");
  if (picker.dataset.sig !== options) { picker.innerHTML = options; picker.dataset.sig = options; }
  picker.value = view.user;
  const me = userById(view.user);
  $("#role-note").textContent = me ? (roleOf(me) === "Member" ?
    "A plain member: retrying and fixing sync errors needs Owner or Admin permissions." :
    `${roleOf(me)}: may retry, reconnect and fix sync errors.`) : "";
  $("#workspace-name").textContent = state.team?.name || "Slack";
  $("#channel-list").innerHTML = state.channels.filter((c) => !c.is_archived).map((c) =>
    `<li><a href="#" class="side-item${c.id === view.channel && view.surface === "channel" ? " active" : ""}` +
    `${c.member ? "" : " muted"}" data-channel="${esc(c.id)}"><span class="hash">${c.is_private ? LOCK : "#"}` +
    `</span>${esc(c.name)}</a></li>`).join("");
  $("#app-home-link").classList.toggle("active", view.surface === "home");
  $("#demo-links").innerHTML = state.links.map((l) =>
    `<li><a class="side-item" href="${esc(safeUrl(l.url))}" target="_blank" rel="noopener">${esc(l.label)}</a></li>`)
    .join("");
  const channel = state.channels.find((c) => c.id === state.channel);
  const home = view.surface === "home";
  $("#main-title").textContent = home ? (state.team?.bot_name || "syncbot") : `# ${channel ? channel.name : ""}`;
  $("#main-subtitle").textContent = home ? "App Home" :
    (channel && !channel.bot_member ? "syncbot is not in this channel" : "Sync errors from QuickBooks Online");
  document.title = home ? "syncbot offline: App Home" : `syncbot offline: #${channel ? channel.name : ""}`;
  $("#home-tabs").hidden = !home;
  $("#home").hidden = !home;
  $("#messages").hidden = home;
  $("#composer").hidden = home;
  $("#composer-input").placeholder = `Message #${channel ? channel.name : ""}, or a command: /sync-log errors`;
  $("#banner").hidden = state.app_ready;
  $("#banner").textContent = state.app_ready ? "" : "No app is connected to this stand-in: buttons do nothing.";
}

function render() {
  renderChrome();
  if (view.surface === "home") renderHome(); else renderMessages();
  renderModal();
}

// ------------------------------------------------------------------------------------------------ talking
async function load() {
  if (loading) return;
  loading = true;
  try {
    const q = new URLSearchParams({user: view.user});
    if (view.channel) q.set("channel", view.channel);
    const resp = await fetch(`/_control/page?${q}`, {cache: "no-store"});
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    state = await resp.json();
    if (!view.user || !userById(view.user)) {
      const people = state.users.filter((u) => !u.is_bot && !u.deleted);
      view.user = (people.find((u) => u.is_owner) || people[0] || {}).id || "";
      loading = false;
      return load();
    }
    view.channel = state.channel;
    shownVersion = state.version;
    render();
    document.body.dataset.version = String(state.version);
    connectionBack();
  } catch (err) {
    connectionLost(err);
  } finally {
    loading = false;
  }
}

// The demo stopped (Ctrl-C) or the network failed: say so, keep the page as it is, and keep trying; the page
// catches up by itself once the stand-in answers again (e.g. after the next `make run`).
let lost = false;
function connectionLost(err) {
  lost = true;
  const el = $("#connection");
  el.textContent = `Connection to the Slack stand-in lost (${err.message || err}): retrying… ` +
    "Is `make run` still running?";
  el.hidden = false;
  document.body.dataset.connection = "lost";
}

function connectionBack() {
  if (!lost) return;
  lost = false;
  $("#connection").hidden = true;
  document.body.dataset.connection = "ok";
}

async function poll() {
  try {
    const resp = await fetch("/_control/version", {cache: "no-store"});
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    if (data.version !== shownVersion || lost) await load(); else connectionBack();
  } catch (err) {
    connectionLost(err);
  }
  setTimeout(poll, lost ? RETRY_MS : POLL_MS);
}

async function drive(action, payload) {
  let resp;
  try {
    resp = await fetch(`/_control/drive/${action}`, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(payload)});
  } catch (err) {
    connectionLost(err);
    toast("That did not reach the Slack stand-in: nothing was sent to syncbot.", true);
    return {ok: false, error: String(err)};
  }
  let data = {};
  try { data = await resp.json(); } catch (err) { data = {ok: false, error: `HTTP ${resp.status}`}; }
  if (!data.ok) {
    toast(data.error || "Slack could not reach the app.", true);
  } else if (data.status !== 200) {
    toast(data.status === 401 ? "The app refused the request's signature (401)." :
      `syncbot did not handle that (HTTP ${data.status}). Slack would show a warning icon.`, true);
  }
  await load();
  return data;
}

let toastTimer = null;
function toast(text, bad) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.toggle("bad", !!bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

function askConfirm(confirm) {
  return new Promise((resolve) => {
    const backdrop = $("#modal-backdrop");
    backdrop.dataset.confirm = "1";
    $("#modal").innerHTML = `<div class="modal-head"><div class="modal-title">${textObj(confirm.title)}</div></div>` +
      `<div class="confirm-text">${textObj(confirm.text)}</div><div class="modal-foot">` +
      `<button type="button" class="bk-btn" data-answer="no">${textObj(confirm.deny) || "Cancel"}</button>` +
      `<button type="button" class="bk-btn ${confirm.style === "danger" ? "danger" : "primary"}" data-answer="yes">` +
      `${textObj(confirm.confirm) || "Yes"}</button></div>`;
    backdrop.hidden = false;
    const done = (answer) => {
      delete backdrop.dataset.confirm;
      backdrop.hidden = true;
      signatures.delete("modal");
      backdrop.removeEventListener("click", onClick);
      resolve(answer);
      renderModal();
    };
    const onClick = (ev) => {
      const btn = ev.target.closest("[data-answer]");
      if (btn) done(btn.dataset.answer === "yes");
    };
    backdrop.addEventListener("click", onClick);
  });
}

async function act(control, selected) {
  const where = control.closest("[data-surface]");
  if (!where) return;
  if (control.dataset.confirm && !(await askConfirm(JSON.parse(control.dataset.confirm)))) return;
  const payload = {action_id: control.dataset.actionId, user_id: view.user};
  if (control.dataset.value !== undefined) payload.value = control.dataset.value;
  if (selected) payload.selected_option = selected;
  control.classList.add("busy");
  const surface = where.dataset.surface;
  if (surface === "home" || surface === "modal") {
    payload.surface = surface;
    if (surface === "modal") payload.view_id = where.dataset.viewId;
    await drive("click_in_view", payload);
  } else {
    const msg = control.closest(".msg");
    await drive("click", {...payload, channel_id: surface === "dm" ? state.dm_channel : state.channel,
      message_ts: msg.dataset.ts, ephemeral: surface === "ephemeral"});
  }
  control.classList.remove("busy");
}

function collectValues(body) {
  const values = {};
  for (const input of body.querySelectorAll("[data-block-id][data-action-id][data-type]")) {
    const bid = input.dataset.blockId;
    const aid = input.dataset.actionId;
    values[bid] = values[bid] || {};
    if (input.tagName === "SELECT") {
      const options = JSON.parse(input.dataset.options || "[]");
      const chosen = options.find((o) => o.value === input.value) || null;
      values[bid][aid] = {type: input.dataset.type, selected_option: chosen};
    } else {
      values[bid][aid] = {type: input.dataset.type, value: input.value === "" ? null : input.value};
    }
  }
  return values;
}

async function submitModal() {
  const body = $("#modal .modal-body");
  const viewId = body.dataset.viewId;
  const data = await drive("submit_view", {user_id: view.user, view_id: viewId, values: collectValues(body)});
  if (data.view_ack?.response_action === "errors") {
    pendingErrors[viewId] = data.view_ack.errors || {};
    signatures.delete("modal");
    renderModal();
  }
}

async function closeModal() {
  const backdrop = $("#modal-backdrop");
  const viewId = backdrop.dataset.viewId;
  backdrop.hidden = true;
  await fetch("/_control/close_view", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({team_id: state.team.id, user_id: view.user, view_id: viewId})});
  await load();
}

async function send(text) {
  const trimmed = text.trim();
  if (!trimmed) return;
  if (trimmed.startsWith("/")) {
    const space = trimmed.indexOf(" ");
    const command = space < 0 ? trimmed : trimmed.slice(0, space);
    const rest = space < 0 ? "" : trimmed.slice(space + 1).trim();
    await drive("command", {command, text: rest, user_id: view.user, channel_id: state.channel});
  } else {
    await fetch("/_control/messages", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({channel: state.channel, user: view.user, text: trimmed})});
    await load();
  }
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

function openHome() {
  view.surface = "home";
  signatures.delete("home");
  render();
  drive("app_home_opened", {user_id: view.user});
}

function remember() {
  localStorage.setItem("syncbot-demo-user", view.user);
  const q = new URLSearchParams({user: view.user});
  if (view.channel) q.set("channel", view.channel);
  if (view.surface === "home") q.set("tab", "home");
  history.replaceState(null, "", `?${q}`);
}

// ------------------------------------------------------------------------------------------------ wiring
// A Slack permalink (chat.getPermalink: https://<team>.slack.com/archives/<channel>/p<ts without the dot>) to a
// message of the channel shown: the page scrolls to it and flashes it, as Slack's client does. False otherwise.
function jumpToMessage(url) {
  const m = /\/archives\/([A-Z0-9]+)\/p(\d{10})(\d{6})/.exec(url || "");
  if (!m || m[1] !== view.channel) return false;
  const el = document.querySelector(`#messages > .msg[data-ts="${m[2]}.${m[3]}"]`);
  if (!el) return false;
  el.scrollIntoView({block: "center"});
  el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash");
  return true;
}

document.addEventListener("click", (ev) => {
  const target = ev.target;
  const modalBtn = target.closest("[data-modal]");
  if (modalBtn) {
    ev.preventDefault();
    if (modalBtn.dataset.modal === "submit") submitModal(); else closeModal();
    return;
  }
  const thread = target.closest("[data-thread]");
  if (thread) {
    const ts = thread.dataset.thread;
    if (expanded.has(ts)) expanded.delete(ts); else expanded.add(ts);
    renderMessages();
    return;
  }
  const dismiss = target.closest("[data-dismiss]");
  if (dismiss) {
    ev.preventDefault();
    dismissed.add(dismiss.dataset.dismiss);
    renderMessages();
    return;
  }
  const channel = target.closest("[data-channel]");
  if (channel) {
    ev.preventDefault();
    view.channel = channel.dataset.channel;
    view.surface = "channel";
    signatures.clear();
    $("#messages").innerHTML = "";
    remember();
    load();
    return;
  }
  const appTab = target.closest("[data-app-tab]");
  if (appTab) {
    ev.preventDefault();
    view.appTab = appTab.dataset.appTab;
    signatures.delete("home");
    renderHome();
    return;
  }
  if (target.closest("#app-home-link")) {
    ev.preventDefault();
    view.appTab = "home";
    openHome();
    remember();
    return;
  }
  const fill = target.closest("[data-fill]");
  if (fill) {
    $("#composer-input").value = fill.dataset.fill;
    $("#composer-input").focus();
    return;
  }
  const button = target.closest("button[data-action-id]");
  if (button && !button.classList.contains("busy")) {
    if (button.dataset.url && !jumpToMessage(button.dataset.url)) window.open(button.dataset.url, "_blank", "noopener");
    act(button, null);
  }
});

document.addEventListener("change", (ev) => {
  const select = ev.target.closest("select[data-action-id]:not([data-type])");
  if (!select || !select.value) return;
  const options = JSON.parse(select.dataset.options || "[]");
  act(select, options.find((o) => o.value === select.value) || null);
});

$("#user-picker").addEventListener("change", (ev) => {
  view.user = ev.target.value;
  signatures.clear();
  $("#messages").innerHTML = "";
  remember();
  if (view.surface === "home") openHome(); else load();
});

$("#composer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#composer-input");
  const text = input.value;
  input.value = "";
  send(text);
});

load().then(() => {
  remember();
  if (view.surface === "home") openHome();
  poll();
});
