// A tiny element builder: text always goes in as text nodes, never as HTML,
// so user data cannot become markup; no inline styles or handlers attributes
// (the CSP allows neither).

export type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false).map((c) => (typeof c === "number" ? String(c) : c)));
  return element;
}

/** A time as the server pages write it, in UTC whatever the browser's zone:
 * "2026-12-02 17:50 UTC" (the list), with `seconds` "2026-12-02 17:50:07 UTC" (a thing). */
export function formatDate(iso: string, seconds = false): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, "0");
  const day = `${String(date.getUTCFullYear()).padStart(4, "0")}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}`;
  const clock = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}${seconds ? `:${two(date.getUTCSeconds())}` : ""}`;
  return `${day} ${clock} UTC`;
}

/** formatDate in a <time>, whose datetime is the API's own, as the server pages' are. */
export function time(iso: string, seconds = false): HTMLTimeElement {
  return h("time", { datetime: iso }, formatDate(iso, seconds));
}

/** Jinja's `truncate` filter as the server list applies it (`|truncate(120)`): a text up
 * to 5 characters over the length is kept whole; a longer one is cut at the last space
 * before length - 3 characters, then "..." added. Characters are code points, as Python's. */
export function truncate(text: string, length = 120, leeway = 5, end = "..."): string {
  const characters = Array.from(text);
  if (characters.length <= length + leeway) return text;
  const head = characters.slice(0, length - end.length).join("");
  const space = head.lastIndexOf(" ");
  return (space === -1 ? head : head.slice(0, space)) + end;
}

// Bootstrap Icons (MIT), the server pages' icons, as SVG: the icon font would be a
// download of its own for three glyphs. Decorative: hidden from assistive technology.
const ICONS = {
  "life-preserver": ["M8 16A8 8 0 1 0 8 0a8 8 0 0 0 0 16m6.43-5.228a7.03 7.03 0 0 1-3.658 3.658l-1.115-2.788a4 4 0 0 0 1.985-1.985zM5.228 14.43a7.03 7.03 0 0 1-3.658-3.658l2.788-1.115a4 4 0 0 0 1.985 1.985zm9.202-9.202-2.788 1.115a4 4 0 0 0-1.985-1.985l1.115-2.788a7.03 7.03 0 0 1 3.658 3.658m-8.087-.87a4 4 0 0 0-1.985 1.985L1.57 5.228A7.03 7.03 0 0 1 5.228 1.57zM8 11a3 3 0 1 1 0-6 3 3 0 0 1 0 6"],
  "plus-lg": ["M8 2a.5.5 0 0 1 .5.5v5h5a.5.5 0 0 1 0 1h-5v5a.5.5 0 0 1-1 0v-5h-5a.5.5 0 0 1 0-1h5v-5A.5.5 0 0 1 8 2"],
  download: [
    "M.5 9.9a.5.5 0 0 1 .5.5v2.5a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-2.5a.5.5 0 0 1 1 0v2.5a2 2 0 0 1-2 2H2a2 2 0 0 1-2-2v-2.5a.5.5 0 0 1 .5-.5",
    "M7.646 11.854a.5.5 0 0 0 .708 0l3-3a.5.5 0 0 0-.708-.708L8.5 10.293V1.5a.5.5 0 0 0-1 0v8.793L5.354 8.146a.5.5 0 1 0-.708.708z",
  ],
} as const;

export function icon(name: keyof typeof ICONS): SVGSVGElement {
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(SVG, "svg");
  for (const [key, value] of Object.entries({ class: `bi bi-${name} me-1`, viewBox: "0 0 16 16", fill: "currentColor", "aria-hidden": "true", focusable: "false" })) svg.setAttribute(key, value);
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
