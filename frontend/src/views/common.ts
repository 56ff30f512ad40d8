import { ApiError, type Thing } from "../api";
import { h } from "../dom";

/** The document's title for a view's heading, in the server pages' form (base.html's
 * "… · Shipshape"); "Error: " first while the view shows a failure, as theirs do
 * (WCAG 2.4.2). */
export function pageTitle(text: string, failed = false): string {
  return `${failed ? "Error: " : ""}${text} · Shipshape`;
}

/** Unicode's White_Space characters: the server's rule for what a name and the list's
 * filter are stripped of (app.things.WHITE_SPACE). Not JavaScript's trim(), which also
 * strips U+FEFF, a character the server keeps and refuses a name of. */
const WHITE_SPACE = "[\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGES = new RegExp(`^${WHITE_SPACE}+|${WHITE_SPACE}+$`, "g");

export function strip(text: string): string {
  return text.replace(EDGES, "");
}

/** The view's <h1>, and the document's title (the list's own heading is already "Things").
 * Bootstrap's h1, as the server pages' headings are. */
export function title(text: string, documentTitle = pageTitle(text), className = "text-break"): HTMLHeadingElement {
  document.title = documentTitle;
  return h("h1", { class: className, tabindex: "-1" }, text);
}

/** The server pages' breadcrumbs: links to the views above this one, then this one's name. */
export function breadcrumbs(...trail: [label: string, path?: string][]): HTMLElement {
  return h(
    "nav",
    { "aria-label": "Breadcrumb" },
    h(
      "ol",
      { class: "breadcrumb" },
      ...trail.map(([label, path]) =>
        path === undefined
          ? h("li", { class: "breadcrumb-item active", "aria-current": "page" }, label)
          : h("li", { class: "breadcrumb-item" }, h("a", { href: path }, label)),
      ),
    ),
  );
}

/** "Loading…"; `focusable` when it replaces the control that had focus (a "Try again"). */
export function loading(focusable = false): HTMLElement {
  return h("p", { class: "text-body-secondary", role: "status", tabindex: focusable ? "-1" : undefined }, h("span", { class: "spinner-border spinner-border-sm me-2", "aria-hidden": "true" }), "Loading…");
}

/** A view's heading when loading it failed: a thing that is not there is the server's
 * "Page not found", in the heading and the tab's title; any other failure keeps the
 * heading, and the title says "Error:", as the server pages' titles do (WCAG 2.4.2). */
export function failedTitle(text: string, error: unknown): HTMLHeadingElement {
  if (error instanceof ApiError && error.status === 404) return title("Page not found");
  return title(text, pageTitle(text, true));
}

/** What the user reads when the API fails: what happened, and what to do. */
export function describe(error: unknown): string {
  if (!(error instanceof ApiError)) return "Something went wrong in the page. Reload it, then try again.";
  if (error.status === 0) return error.message;
  if (error.status === 404) return "There is no such thing (404): it may have been deleted.";
  if (error.status === 429) return "Too many requests in a short time (429). Wait a moment, then try again.";
  if (error.status >= 500) return `The server had a problem (${error.status}). Try again in a moment.`;
  return `${error.message} (${error.status})`;
}

/** Whether the same request could succeed later: the network, a 429, the server's own fault;
 * not a 404 or another refusal of the request itself, which would only fail again. */
function worthRetrying(error: unknown): boolean {
  return !(error instanceof ApiError) || error.status === 0 || error.status === 429 || error.status >= 500;
}

/** The error block. Focusable (tabindex -1): it is drawn in place of the control that had
 * focus (a "Try again", a confirmation's Delete), which then takes focus to it, not to <body>. */
export function errorState(error: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "alert alert-danger", role: "alert", tabindex: "-1", "data-error-state": true },
    h("p", { class: "mb-2" }, describe(error)),
    retry && worthRetrying(error) ? h("button", { type: "button", class: "btn btn-outline-danger btn-sm", onclick: () => retry() }, "Try again") : null,
  );
}

/** A message for the next view to show, as the server pages' flash after a redirect. */
let pendingFlash: string | null = null;

export function flash(text: string): void {
  pendingFlash = text;
}

/** The pending message as a status alert, or none: a list to spread first among a view's
 * children, above its breadcrumbs, where the server pages' base.html puts theirs.
 * Focusable, and focused instead of the heading (main.ts), as the server pages do: a live
 * region drawn already filled, with the view around it, is not announced. Dismissible as
 * theirs are; closed, it gives focus to the heading, not to <body>. */
export function takeFlash(): HTMLElement[] {
  const text = pendingFlash;
  pendingFlash = null;
  if (text === null) return [];
  const close = (event: Event) => {
    const alert = (event.currentTarget as HTMLElement).closest("[data-flash]");
    const heading = alert?.parentElement?.querySelector<HTMLElement>("h1");
    alert?.remove();
    heading?.focus();
  };
  return [
    h("div", { class: "alert alert-success alert-dismissible text-break", role: "status", tabindex: "-1", "data-flash": true },
      text,
      h("button", { type: "button", class: "btn-close", "aria-label": "Close", onclick: close })),
  ];
}

/** Draws a view again in place ("Try again", "Show the new version"): the control that had
 * focus is gone with the old view, and focus would fall to <body>. The heading takes it while
 * the view loads, then the error if it failed again, else the heading, unless the user has
 * moved focus elsewhere meanwhile. */
export async function redraw(main: HTMLElement, draw: () => Promise<void>): Promise<void> {
  const drawing = draw(); // a view draws its heading and "Loading…" before it first waits
  main.querySelector<HTMLElement>("h1")?.focus();
  const loadingHeading = document.activeElement;
  await drawing;
  if (document.activeElement !== loadingHeading && document.activeElement !== document.body) return;
  (main.querySelector<HTMLElement>("[data-error-state]") ?? main.querySelector<HTMLElement>("h1"))?.focus();
}

/** A thing a write just returned, handed to the view it navigates to, which would
 * otherwise GET it again at once: one request instead of two of the rate limit's two a second. */
let handedOver: Thing | null = null;

export function handOver(thing: Thing): void {
  handedOver = thing;
}

export function takeHandedOver(id: string): Thing | null {
  const thing = handedOver;
  handedOver = null;
  return thing !== null && thing.id === id ? thing : null;
}

/** A thing's version as a conflict shows it (the edit's and the delete's): all of it,
 * since the user's answer keeps or replaces all of it. */
export function versionFacts(current: Thing): HTMLElement {
  return h(
    "dl",
    { class: "row" },
    h("dt", { class: "col-sm-2" }, "Name"), h("dd", { class: "col-sm-10 text-break" }, current.name),
    h("dt", { class: "col-sm-2" }, "Description"), h("dd", { class: "col-sm-10 pre-wrap" }, current.description || "No description."),
    h("dt", { class: "col-sm-2" }, "Version"), h("dd", { class: "col-sm-10" }, current.version),
  );
}
