import { ApiError, type Thing } from "../api";
import { h } from "../dom";

/** The view's <h1>, and the document's title (the list's own heading is already "Things"). */
export function title(text: string, documentTitle = `${text} · Things · Shipshape`): HTMLHeadingElement {
  document.title = documentTitle;
  return h("h1", { class: "h2 mb-3", tabindex: "-1" }, text);
}

export function loading(): HTMLElement {
  return h("p", { class: "text-body-secondary", role: "status" }, h("span", { class: "spinner-border spinner-border-sm me-2", "aria-hidden": "true" }), "Loading…");
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

export function errorState(error: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "alert alert-danger", role: "alert", "data-error-state": true },
    h("p", { class: "mb-2" }, describe(error)),
    retry && worthRetrying(error) ? h("button", { type: "button", class: "btn btn-outline-danger btn-sm", onclick: () => retry() }, "Try again") : null,
  );
}

/** A message for the next view to show, as the server pages' flash after a redirect. */
let pendingFlash: string | null = null;

export function flash(text: string): void {
  pendingFlash = text;
}

/** The pending message as a status alert (announced, not focused), or none: a list to
 * spread among a view's children. */
export function takeFlash(): HTMLElement[] {
  const text = pendingFlash;
  pendingFlash = null;
  return text === null ? [] : [h("div", { class: "alert alert-success", role: "status", "data-flash": true }, text)];
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
