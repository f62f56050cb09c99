// A minimal HTML rendering of Slack Block Kit, for a picture of the App Home
// (handlers/slack/testdata/TestGolden_AppHome.golden.json). Slack's own renderer is not
// public: this draws only the blocks the App Home uses (header, section with a button
// accessory, divider, context, actions) in the colours of Slack's light theme, enough to show
// the layout, not Slack's exact look.

const esc = (s) => s.replace(/&(?!(amp|lt|gt|quot|#\d+);)/g, "&amp;").replace(/"/g, "&quot;");
const escAll = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

// mrkdwn: Slack's markup (already &-escaped by its sender): <…> links and mentions, `code`,
// *bold*, _italic_, ~strike~, newlines.
function mrkdwn(text) {
  const parts = text.split(/(<[^>]*>|`[^`\n]+`)/g);
  return parts
    .map((p) => {
      if (p.startsWith("<") && p.endsWith(">")) {
        const inner = p.slice(1, -1);
        const [target, label] = inner.split("|");
        if (target.startsWith("@")) return `<span class="mention">@${esc(label || target.slice(1))}</span>`;
        if (target.startsWith("#")) return `<span class="mention">#${esc(label || target.slice(1))}</span>`;
        if (target.startsWith("!")) return `<span class="mention">@${esc(label || target.slice(1))}</span>`;
        return `<a>${esc(label || target)}</a>`;
      }
      if (p.startsWith("`") && p.endsWith("`") && p.length > 1) return `<code>${esc(p.slice(1, -1))}</code>`;
      return esc(p)
        .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,:;!?])/g, "$1<b>$2</b>")
        .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;!?])/g, "$1<i>$2</i>")
        .replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,:;!?])/g, "$1<s>$2</s>");
    })
    .join("")
    .replace(/\n/g, "<br>");
}

const text = (t) => (t.type === "mrkdwn" ? mrkdwn(t.text) : escAll(t.text));

function button(b) {
  const style = b.style ? ` ${b.style}` : "";
  return `<button class="btn${style}">${escAll(b.text.text)}</button>`;
}

function block(b) {
  switch (b.type) {
    case "header":
      return `<div class="header">${escAll(b.text.text)}</div>`;
    case "divider":
      return `<hr>`;
    case "context":
      return `<div class="context">${b.elements.map((e) => (e.type === "image" ? "" : `<span>${text(e)}</span>`)).join(" ")}</div>`;
    case "actions":
      return `<div class="actions">${b.elements.filter((e) => e.type === "button").map(button).join("")}</div>`;
    case "section": {
      const fields = (b.fields || []).map((f) => `<div>${text(f)}</div>`).join("");
      const acc = b.accessory && b.accessory.type === "button" ? `<div class="accessory">${button(b.accessory)}</div>` : "";
      return `<div class="section"><div class="stext">${b.text ? text(b.text) : ""}${fields ? `<div class="fields">${fields}</div>` : ""}</div>${acc}</div>`;
    }
  }
  return `<div class="unknown">[${escAll(b.type)}]</div>`;
}

export const slackCSS = `
.slack { width: 640px; background: #FFFFFF; color: #1D1C1D; border: 1px solid #DDDDDD; border-radius: 8px;
  padding: 16px 20px; font: 15px/1.47 "Lato", "Liberation Sans", Arial, sans-serif; }
.slack .header { font-weight: 900; font-size: 18px; margin: 12px 0 4px; }
.slack .context { color: #616061; font-size: 13px; margin: 4px 0; }
.slack .section { display: flex; gap: 12px; align-items: flex-start; margin: 8px 0; }
.slack .stext { flex: 1; }
.slack .actions { display: flex; gap: 8px; margin: 4px 0 12px; }
.slack hr { border: 0; border-top: 1px solid #DDDDDD; margin: 16px 0; }
.slack code { color: #C01343; background: #F8F8F8; border: 1px solid #E8E8E8; border-radius: 3px; padding: 0 3px;
  font: 12px "Liberation Mono", Menlo, monospace; }
.slack .mention { color: #1264A3; background: #E8F5FA; }
.slack a { color: #1264A3; }
.slack .btn { font: 700 15px "Lato", "Liberation Sans", Arial, sans-serif; height: 36px; padding: 0 12px; border-radius: 4px;
  background: #FFFFFF; color: #1D1C1D; border: 1px solid #BBBABB; }
.slack .btn.primary { background: #007A5A; color: #FFFFFF; border-color: #007A5A; }
.slack .btn.danger { background: #E01E5A; color: #FFFFFF; border-color: #E01E5A; }
`;

// homeHTML renders a home view (its blocks) as HTML.
export function homeHTML(view) {
  return `<div class="slack">${(view.blocks || []).map(block).join("\n")}</div>`;
}
