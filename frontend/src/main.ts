import "bootstrap/dist/css/bootstrap.min.css";
// The server pages' additions to Bootstrap (focus rings, contrast, wrapping): one look.
import "../../src/app/static/src/css/app.css";
import "./style.css";

import { h, icon } from "./dom";
import { BASE, href, match, placeScroll, start, type Route } from "./router";
import { chunkFailed, reloadWhenBack, rendered } from "./reload";
// In the entry, not a chunk, with the API client it imports: "Loading…" shows while a
// view's chunk downloads, and every view needs both anyway.
import { loading, pageTitle } from "./views/common";
import type { View } from "./views/view";

const root = document.getElementById("app") as HTMLElement;
const main = h("main", { id: "main", class: "container flex-grow-1 py-4", tabindex: "-1" });

// The server pages' navbar (templates/base.html): the same brand and links, in the same
// order; all but this app's own are outside BASE, real page loads. Below Bootstrap's md
// breakpoint the links collapse behind a menu button, as theirs do; Bootstrap's JS is not
// in this build, so the button is this code's (Escape closes it, as app.js does there).
const NAV_LINKS = [
  ["/", "Home"],
  ["/things/", "Things"],
  [href("/"), "Things app"],
  ["/cookies", "Cookies"],
  ["/privacy", "Privacy"],
  ["/accessibility", "Accessibility"],
] as const;
const appLink = h("a", { class: "nav-link active", href: href("/") }, "Things app");
const menu = h(
  "div",
  { class: "collapse navbar-collapse", id: "main-nav" },
  h("ul", { class: "navbar-nav ms-auto" }, ...NAV_LINKS.map(([path, label]) => h("li", { class: "nav-item" }, path === href("/") ? appLink : h("a", { class: "nav-link", href: path }, label)))),
);
const toggler = h(
  "button",
  { class: "navbar-toggler", type: "button", "aria-controls": "main-nav", "aria-expanded": "false", "aria-label": "Toggle navigation", onclick: () => showMenu(!menu.classList.contains("show")) },
  h("span", { class: "navbar-toggler-icon" }),
);

function showMenu(show: boolean): void {
  menu.classList.toggle("show", show);
  toggler.setAttribute("aria-expanded", String(show));
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !menu.classList.contains("show")) return;
  if (!menu.contains(document.activeElement) && document.activeElement !== toggler) return;
  showMenu(false);
  toggler.focus();
});

/** This app's link is the current page at the list, whichever of its addresses
 * (/app/, /app/things/), and "true" (a page within it) elsewhere in it, as the server
 * marks a section's link; the menu closes on a navigation, as a page load would close it. */
function updateNavbar(): void {
  appLink.setAttribute("aria-current", match(location.pathname).view === "list" ? "page" : "true");
  showMenu(false);
}

function navbar(): HTMLElement {
  return h(
    "header",
    {},
    h(
      "nav",
      { class: "navbar navbar-expand-md navbar-dark bg-dark", "aria-label": "Main" },
      h("div", { class: "container" }, h("a", { class: "navbar-brand", href: "/" }, icon("life-preserver"), "Shipshape"), toggler, menu),
    ),
  );
}

const loaders: Record<Route["view"], () => Promise<{ default: View }>> = {
  list: () => import("./views/list"),
  detail: () => import("./views/detail"),
  new: () => import("./views/form"),
  edit: () => import("./views/form"),
  missing: () => import("./views/missing"),
};

// Written here, not in a view: a view's code is a chunk, which is what failed to load.
// The tab's title says "Error:", as the server pages' titles do (WCAG 2.4.2).
const NOT_LOADED = "This page could not be loaded";

function missingChunk(): HTMLElement[] {
  document.title = pageTitle(NOT_LOADED, true);
  return [
    h("h1", { tabindex: "-1" }, NOT_LOADED),
    h("div", { class: "alert alert-danger", role: "alert" }, "Part of the app is missing, perhaps after an update. ", h("a", { href: location.href }, "Reload the page"), "."),
  ];
}

function offline(): HTMLElement[] {
  const says = h("p", { class: "mb-2" }, "The server could not be reached. Check your connection, then try again.");
  const retry = async () => {
    if (!(await reloadWhenBack())) says.textContent = "The server still could not be reached. Check your connection, then try again.";
  };
  document.title = pageTitle(NOT_LOADED, true);
  return [
    h("h1", { tabindex: "-1" }, NOT_LOADED),
    h(
      "div",
      { class: "alert alert-danger", role: "alert", "data-error-state": true },
      says,
      h("button", { type: "button", class: "btn btn-outline-danger btn-sm", onclick: () => void retry() }, "Try again"),
    ),
  ];
}

let firstRender = true;
// The view on screen's signal, which the next navigation aborts: a view the user has left
// draws nothing more, and its requests are cancelled, not waited on nor sent again after
// a 429 (the limit is 2 a second, which the views the user stepped through would use up).
let leaving = new AbortController();

// For as long as the new view's chunk downloads, the old view would stay, clickable, with
// no sign that the link was followed: "Loading…" in its place, and <main> busy until the
// new view is drawn. "Loading…" takes focus when the old view had it (the link followed),
// which would fall to <body> otherwise.
function showLoading(): void {
  const hadFocus = main.contains(document.activeElement);
  const status = loading(hadFocus);
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(status);
  if (hadFocus) status.focus();
}

async function render(): Promise<void> {
  leaving.abort();
  leaving = new AbortController();
  updateNavbar();
  const signal = leaving.signal; // aborted: a later navigation won
  showLoading();
  try {
    await draw(match(location.pathname), signal);
  } finally {
    if (!signal.aborted) {
      main.removeAttribute("aria-busy"); // a later one clears its own
      placeScroll();
    }
  }
}

async function draw(route: Route, signal: AbortSignal): Promise<void> {
  let view: View;
  try {
    view = (await loaders[route.view]()).default;
  } catch (error) {
    const failure = await chunkFailed();
    if (failure === "reloading" || signal.aborted) return;
    console.warn("chunk failed to load", error);
    main.replaceChildren(...(failure === "offline" ? offline() : missingChunk()));
    main.querySelector<HTMLElement>("h1")?.focus();
    return;
  }
  if (signal.aborted) return;
  await view(main, route, signal);
  if (signal.aborted) return;
  rendered();
  // After a navigation, focus goes to the new view's heading, as a page load would
  // put a screen reader at the top, or to its message after a write ("… was saved."),
  // which a screen reader would not announce otherwise; on the first load it stays
  // where the browser puts it, so the skip link is still the first Tab stop. Focus does
  // not scroll: render() then puts the page where the user was on it (placeScroll).
  if (!firstRender) (main.querySelector<HTMLElement>("[data-flash]") ?? main.querySelector<HTMLElement>("h1"))?.focus({ preventScroll: true });
  firstRender = false;
}

const FOOTER_LINKS = [
  ["/privacy", "Privacy"],
  ["/cookies", "Cookies"],
  ["/accessibility", "Accessibility"],
] as const;

root.replaceChildren(
  h("a", { class: "visually-hidden-focusable position-absolute top-0 start-0 m-2 p-2 bg-white", href: "#main" }, "Skip to main content"),
  navbar(),
  main,
  // The server pages' footer links too: the accessibility statement, privacy and cookies
  // are reached from every page (WCAG 3.2.3), this app's included. Outside BASE: real loads.
  h(
    "footer",
    { class: "border-top py-3 mt-auto bg-light" },
    h(
      "div",
      { class: "container d-flex flex-wrap gap-3 small" },
      h("span", { class: "text-body-secondary" }, `Shipshape · single-page example served at ${BASE}/`),
      h("nav", { "aria-label": "Footer" }, h("ul", { class: "list-inline mb-0" }, ...FOOTER_LINKS.map(([path, label]) => h("li", { class: "list-inline-item" }, h("a", { href: path }, label))))),
    ),
  ),
);
start(() => void render());
