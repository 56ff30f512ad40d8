import { ApiError } from "../api";
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
  if (error.status === 404) return "Not found: the server has no such thing (404). It may have been deleted, or the Things API is not available.";
  if (error.status === 429) return "Too many requests in a short time (429). Wait a moment, then try again.";
  if (error.status >= 500) return `The server had a problem (${error.status}). Try again in a moment.`;
  return `${error.message} (${error.status})`;
}

export function errorState(error: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "alert alert-danger", role: "alert", "data-error-state": true },
    h("p", { class: "mb-2" }, describe(error)),
    retry ? h("button", { type: "button", class: "btn btn-outline-danger btn-sm", onclick: () => retry() }, "Try again") : null,
  );
}
