// Renders pimbot's Teams cards (the golden files of handlers/teams) with Microsoft's
// adaptivecards SDK and the Microsoft Teams host config in headless Chromium, writes PNGs,
// and prints the WCAG 2 contrast ratio of every text colour the cards use against what is
// behind it: first from the host config (the colours the cards' JSON asks for), then as
// rendered (every visible text node, button and input of every card).
//
//   node render.mjs [--chromium /usr/bin/chromium] [--golden DIR] [--out DIR] [--no-shots] [--all DIR]
//                   [--slack-home FILE]
//
// It also draws the Slack App Home's golden file (slack-home.png) with a minimal Block Kit
// renderer of its own (slack.mjs): Slack's renderer is not public, so that one is a sketch.
//
// --all DIR also writes a PNG of every golden card to DIR (for review; not for the docs).
// Exits 1 when a text colour of the light theme is below 4.5:1, so the check can be rerun
// by anyone who changes a card. See ../render-cards.

import { readFileSync, readdirSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { homeHTML, slackCSS } from "./slack.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const root = resolve(here, "..", "..");

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const executable = opt("--chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const goldenDir = resolve(opt("--golden", join(root, "handlers/teams/testdata")));
const slackHome = resolve(opt("--slack-home", join(root, "handlers/slack/testdata/TestGolden_AppHome.golden.json")));
const outDir = resolve(opt("--out", join(root, "docs/images")));
const shoot = !args.includes("--no-shots");
const allDir = opt("--all", "");

// The screenshots: golden file -> PNG (and the themes to take it in).
const shots = [
  { golden: "TestCard_ApprovalPending", png: "teams-approval-pending", themes: ["light", "dark"] },
  { golden: "TestCard_ApprovalApprovedActive", png: "teams-approval-active" },
  { golden: "TestCard_ApprovalDenied", png: "teams-approval-denied" },
  { golden: "TestCard_Form", png: "teams-form" },
  { golden: "TestCard_FormRefused", png: "teams-form-refused" },
  { golden: "TestCard_MFA", png: "teams-mfa" },
  { golden: "TestCard_Status", png: "teams-status" },
  { golden: "TestCard_Inbox", png: "teams-inbox" },
];

const hostConfigs = {
  light: JSON.parse(readFileSync(join(here, "teams-light.hostconfig.json"), "utf8")),
  dark: JSON.parse(readFileSync(join(here, "teams-dark.hostconfig.json"), "utf8")),
};

// ---- WCAG 2.x contrast (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio) ----

// rgba parses #RGB, #RRGGBB, #AARRGGBB (the host config's form) or [r, g, b, a].
function rgba(c) {
  if (Array.isArray(c)) return c.length === 4 ? c : [...c, 1];
  let h = c.trim().replace(/^#/, "");
  if (h.length === 3) h = h.split("").map((x) => x + x).join("");
  let a = 1;
  if (h.length === 8) {
    a = parseInt(h.slice(0, 2), 16) / 255;
    h = h.slice(2);
  }
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16), a];
}
const over = (fg, bg) => {
  const [r, g, b, a] = rgba(fg);
  const [R, G, B] = rgba(bg);
  return [a * r + (1 - a) * R, a * g + (1 - a) * G, a * b + (1 - a) * B];
};
const luminance = ([r, g, b]) => {
  const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
function contrast(fg, bg) {
  const b = rgba(bg).slice(0, 3);
  const x = luminance(over(fg, b)), y = luminance(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}
const hex = (c) => "#" + rgba(c).slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("").toUpperCase();
const fmt = (r) => r.toFixed(2) + ":1";

// ---- the colours the cards ask for, read from their JSON ----

// textUses walks a card and yields {color, subtle, style, what} for each piece of text:
// TextBlocks (a heading takes the host's heading style), TextRuns, FactSet titles and values,
// input labels, in the container style they sit in (a ShowCard's card: the host's).
function* textUses(node, style, hc, inShowCard = false) {
  if (Array.isArray(node)) {
    for (const x of node) yield* textUses(x, style, hc, inShowCard);
    return;
  }
  if (!node || typeof node !== "object") return;
  let s = style;
  if (["Container", "Column", "ColumnSet"].includes(node.type) && node.style) s = node.style;
  if (node.type === "AdaptiveCard" && inShowCard) s = hc.actions?.showCard?.style || "emphasis";
  const c = (v, d = "default") => String(v || d).toLowerCase();
  switch (node.type) {
    case "TextBlock": {
      const h = node.style === "heading" ? hc.textStyles?.heading || {} : {};
      yield { color: c(node.color || h.color), subtle: !!(node.isSubtle ?? h.isSubtle), style: s, what: node.style === "heading" ? "heading" : "TextBlock" };
      break;
    }
    case "TextRun":
      yield { color: c(node.color), subtle: !!node.isSubtle, style: s, what: "TextRun" };
      break;
    case "FactSet":
      yield { color: c(hc.factSet?.title?.color), subtle: !!hc.factSet?.title?.isSubtle, style: s, what: "FactSet title" };
      yield { color: c(hc.factSet?.value?.color), subtle: !!hc.factSet?.value?.isSubtle, style: s, what: "FactSet value" };
      break;
  }
  if (typeof node.type === "string" && node.type.startsWith("Input.") && node.label) {
    yield { color: "default", subtle: false, style: s, what: "input label" };
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "fallback") continue;
    if (k === "card" && node.type === "Action.ShowCard") yield* textUses(v, s, hc, true);
    else if (v && typeof v === "object") yield* textUses(v, s, hc, inShowCard);
  }
}

function declaredTable(cards) {
  const rows = new Map();
  for (const [name, card] of cards) {
    for (const theme of ["light", "dark"]) {
      const hc = hostConfigs[theme];
      for (const u of textUses(card, "default", hc)) {
        const cs = hc.containerStyles[u.style] || hc.containerStyles.default;
        const fc = cs.foregroundColors[u.color] || cs.foregroundColors.default;
        const fg = u.subtle ? fc.subtle : fc.default;
        const key = `${u.color}${u.subtle ? " (subtle)" : ""} on ${u.style}`;
        const row = rows.get(key) || { key, what: new Set(), cards: new Set() };
        row[theme] = { fg, bg: cs.backgroundColor, ratio: contrast(fg, cs.backgroundColor) };
        row.what.add(u.what);
        row.cards.add(name);
        rows.set(key, row);
      }
    }
  }
  return [...rows.values()].sort((a, b) => a.light.ratio - b.light.ratio);
}

// ---- rendering ----

// The browser builds, read from the packages' folders (their "exports" do not list them).
const pkg = (name, file) => join(dirname(require.resolve(name + "/package.json")), file);
const sdk = readFileSync(pkg("adaptivecards", "dist/adaptivecards.min.js"), "utf8");
const sdkCSS = readFileSync(pkg("adaptivecards", "dist/adaptivecards.css"), "utf8");
const markdown = readFileSync(pkg("markdown-it", "dist/browser/markdown-it.umd.min.js"), "utf8");
const css = readFileSync(join(here, "teams.css"), "utf8");

// Segoe UI is Teams' font and is not on Linux: Liberation Sans (Arial's metrics) stands in.
function withFallbackFont(hc) {
  const c = structuredClone(hc);
  for (const t of Object.values(c.fontTypes || {})) {
    t.fontFamily = t.fontFamily.replace(/sans-serif\s*$/, "'Liberation Sans', Arial, sans-serif");
  }
  return c;
}

function page(theme) {
  return `<!doctype html><html><head><meta charset="utf-8">
<style>${sdkCSS}</style><style>${css}</style>
<script>${markdown}</script><script>${sdk}</script>
<script>window.hostConfig = ${JSON.stringify(withFallbackFont(hostConfigs[theme]))};</script>
</head><body class="${theme}"><div id="cards"></div></body></html>`;
}

// In the page: render one card into a frame; report parse and validation problems.
function renderInPage([id, payload]) {
  const card = new AdaptiveCards.AdaptiveCard();
  card.hostConfig = new AdaptiveCards.HostConfig(window.hostConfig);
  const ctx = new AdaptiveCards.SerializationContext();
  card.parse(payload, ctx);
  const problems = [];
  for (let i = 0; i < ctx.eventCount; i++) problems.push(ctx.getEventAt(i).message);
  for (const e of card.validateProperties().validationEvents) problems.push(e.message);
  // Each card in its own form: radio buttons of one name in two cards stay apart.
  const shot = document.createElement("form");
  shot.className = "shot";
  shot.id = id;
  const frame = document.createElement("div");
  frame.className = "card";
  frame.appendChild(card.render());
  shot.appendChild(frame);
  document.getElementById("cards").appendChild(shot);
  return problems;
}

// In the page: every visible piece of text of a rendered card, with its colour and the
// colour behind it (the element's own and its ancestors' backgrounds, composited).
function measureInPage(id) {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let out = [255, 255, 255];
    for (const l of layers.reverse()) out = out.map((v, i) => l[3] * l[i] + (1 - l[3]) * v);
    return out;
  };
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const root = document.getElementById(id);
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (!text || !visible(el) || el.closest("select")) continue;
    const st = getComputedStyle(el);
    out.push({ text, fg: parse(st.color), bg: behind(el), size: st.fontSize, weight: st.fontWeight, button: !!el.closest("button") });
  }
  for (const el of root.querySelectorAll("input, textarea, select")) {
    if (!visible(el) || el.type === "radio" || el.type === "checkbox") continue;
    const st = getComputedStyle(el);
    const value = el.tagName === "SELECT" ? el.options[el.selectedIndex]?.text || "" : el.value;
    if (value) out.push({ text: value, fg: parse(st.color), bg: behind(el), size: st.fontSize, weight: st.fontWeight, input: true });
    else if (el.placeholder) out.push({ text: el.placeholder, fg: parse(getComputedStyle(el, "::placeholder").color), bg: behind(el), size: st.fontSize, weight: st.fontWeight, input: true });
  }
  return out;
}

const goldens = readdirSync(goldenDir).filter((f) => f.endsWith(".golden.json")).sort();
const cards = goldens.map((f) => [f.replace(/\.golden\.json$/, ""), JSON.parse(readFileSync(join(goldenDir, f), "utf8"))]);

const profile = mkdtempSync(join(tmpdir(), "render-cards-"));
let failed = false;
const measured = { light: new Map(), dark: new Map(), slack: new Map() };
try {
  // A fresh profile, and no network: Chromium's background services are turned off.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: executable,
    headless: true,
    chromiumSandbox: false,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    viewport: { width: 720, height: 900 },
    deviceScaleFactor: 2,
    offline: true,
  });
  for (const theme of ["light", "dark"]) {
    const p = await context.newPage();
    p.on("pageerror", (e) => { console.error(`page error (${theme}): ${e.message}`); failed = true; });
    await p.setContent(page(theme));
    for (const [name, card] of cards) {
      const problems = await p.evaluate(renderInPage, [name, card]);
      if (problems.length && theme === "light") console.log(`${name}: the SDK says: ${problems.join("; ")}`);
      for (const m of await p.evaluate(measureInPage, name)) {
        const fg = over(m.fg, m.bg); // a translucent colour (subtle text) as it shows
        const key = `${hex(fg)} on ${hex(m.bg)}`;
        const row = measured[theme].get(key) || { fg, bg: m.bg, ratio: contrast(fg, m.bg), texts: new Set(), cards: new Set() };
        row.texts.add(m.text.length > 28 ? m.text.slice(0, 27) + "…" : m.text);
        row.cards.add(name);
        measured[theme].set(key, row);
      }
    }
    await p.evaluate(() => document.fonts.ready);
    if (shoot) {
      mkdirSync(outDir, { recursive: true });
      for (const s of shots) {
        if (!(s.themes || ["light"]).includes(theme)) continue;
        const file = join(outDir, s.png + (theme === "light" ? "" : "-" + theme) + ".png");
        await p.locator("#" + s.golden).screenshot({ path: file });
        console.log(`wrote ${file.slice(root.length + 1)}`);
      }
    }
    if (allDir && theme === "light") {
      mkdirSync(allDir, { recursive: true });
      for (const [name] of cards) await p.locator("#" + name).screenshot({ path: join(allDir, name + ".png") });
    }
    await p.close();
  }
  // The Slack App Home, drawn by slack.mjs (an approximation of Slack's light theme).
  let home = null;
  try {
    home = JSON.parse(readFileSync(slackHome, "utf8"));
  } catch {
    console.log(`no Slack App Home golden file at ${slackHome}; slack-home.png not drawn`);
  }
  if (home) {
    const p = await context.newPage();
    await p.setContent(`<!doctype html><html><head><meta charset="utf-8"><style>body{margin:0;padding:16px;background:#F8F8F8}
${slackCSS}</style></head><body><form class="shot" id="slack-home">${homeHTML(home)}</form></body></html>`);
    await p.evaluate(() => document.fonts.ready);
    for (const m of await p.evaluate(measureInPage, "slack-home")) {
      const fg = over(m.fg, m.bg);
      const key = `${hex(fg)} on ${hex(m.bg)}`;
      const row = measured.slack.get(key) || { fg, bg: m.bg, ratio: contrast(fg, m.bg), texts: new Set() };
      row.texts.add(m.text.length > 28 ? m.text.slice(0, 27) + "…" : m.text);
      measured.slack.set(key, row);
    }
    if (shoot) {
      const file = join(outDir, "slack-home.png");
      await p.locator("#slack-home").screenshot({ path: file });
      console.log(`wrote ${file.slice(root.length + 1)}`);
    }
    await p.close();
  }
  await context.close();
} finally {
  rmSync(profile, { recursive: true, force: true });
}

// ---- the report ----

console.log("\nText colours the cards ask for (Teams host config; WCAG AA needs 4.5:1 for text):");
console.log("  colour on container style             light: fg on bg      ratio | dark: ratio | used by");
for (const r of declaredTable(cards)) {
  const ok = r.light.ratio >= 4.5 ? " " : "!";
  console.log(`${ok} ${r.key.padEnd(36)} ${hex(over(r.light.fg, r.light.bg))} on ${hex(r.light.bg)}  ${fmt(r.light.ratio).padStart(8)} | ${fmt(r.dark.ratio).padStart(8)}   | ${[...r.what].join(", ")}`);
  if (r.light.ratio < 4.5) failed = true;
}

console.log("\nEvery colour of the Teams light host config's default style, for reference (against #FFFFFF):");
const fcs = hostConfigs.light.containerStyles.default;
for (const [name, c] of Object.entries(fcs.foregroundColors)) {
  console.log(`  ${name.padEnd(10)} ${hex(over(c.default, fcs.backgroundColor))} ${fmt(contrast(c.default, fcs.backgroundColor)).padStart(8)}   subtle ${hex(over(c.subtle, fcs.backgroundColor))} ${fmt(contrast(c.subtle, fcs.backgroundColor)).padStart(8)}`);
}

for (const theme of ["light", "dark"]) {
  console.log(`\nAs rendered, ${theme} theme (every visible text node, button and input of ${cards.length} cards):`);
  for (const r of [...measured[theme].values()].sort((a, b) => a.ratio - b.ratio)) {
    const ok = r.ratio >= 4.5 ? " " : "!";
    console.log(`${ok} ${hex(r.fg)} on ${hex(r.bg)}  ${fmt(r.ratio).padStart(8)}  e.g. ${[...r.texts].slice(0, 3).map((t) => JSON.stringify(t)).join(", ")}`);
    if (r.ratio < 4.5 && theme === "light") failed = true;
  }
  if (theme === "dark") {
    console.log("  (the dark theme is reported, not failed: the host draws a required input's \"*\" in its host");
    console.log("  config's attention colour, #D74654 there, which no card can choose)");
  }
}
if (measured.slack.size) {
  console.log("\nSlack App Home, as drawn by slack.mjs in Slack's light colours (for reference; Slack draws its own):");
  for (const r of [...measured.slack.values()].sort((a, b) => a.ratio - b.ratio)) {
    console.log(`${r.ratio >= 4.5 ? " " : "!"} ${hex(r.fg)} on ${hex(r.bg)}  ${fmt(r.ratio).padStart(8)}  e.g. ${[...r.texts].slice(0, 3).map((t) => JSON.stringify(t)).join(", ")}`);
  }
}
if (failed) {
  console.log("\nSome text is below 4.5:1 in the light theme (marked !).");
  process.exit(1);
}
console.log("\nEvery text colour of the light theme is at least 4.5:1.");
