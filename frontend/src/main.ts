import "bootstrap/dist/css/bootstrap.min.css";
// The server pages' additions to Bootstrap (focus rings, contrast, wrapping): one look.
import "../../src/app/static/src/css/app.css";
import "./style.css";

import { h } from "./dom";
import { BASE, href, match, start, type Route } from "./router";
import { chunkFailed, reloadWhenBack, rendered } from "./reload";
import type { View } from "./views/view";

const root = document.getElementById("app") as HTMLElement;
const main = h("main", { id: "main", class: "container flex-grow-1 py-4", tabindex: "-1" });

function navbar(): HTMLElement {
  const link = (path: string, label: string, current: boolean) =>
    h("li", { class: "nav-item" }, h("a", { class: current ? "nav-link active" : "nav-link", href: path, "aria-current": current ? "page" : undefined }, label));
  return h(
    "header",
    {},
    h(
      "nav",
      { class: "navbar navbar-expand navbar-dark bg-dark", "aria-label": "Main" },
      h(
        "div",
        { class: "container" },
        h("a", { class: "navbar-brand", href: "/" }, "Shipshape"),
        h("ul", { class: "navbar-nav ms-auto" }, link("/", "Home", false), link(href("/"), "Things app", true)),
      ),
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
function missingChunk(): HTMLElement[] {
  return [
    h("h1", { tabindex: "-1" }, "This page could not be loaded"),
    h("div", { class: "alert alert-danger", role: "alert" }, "Part of the app is missing, perhaps after an update. ", h("a", { href: location.href }, "Reload the page"), "."),
  ];
}

function offline(): HTMLElement[] {
  const says = h("p", { class: "mb-2" }, "The server could not be reached. Check your connection, then try again.");
  const retry = async () => {
    if (!(await reloadWhenBack())) says.textContent = "The server still could not be reached. Check your connection, then try again.";
  };
  return [
    h("h1", { tabindex: "-1" }, "This page could not be loaded"),
    h(
      "div",
      { class: "alert alert-danger", role: "alert", "data-error-state": true },
      says,
      h("button", { type: "button", class: "btn btn-outline-danger btn-sm", onclick: () => void retry() }, "Try again"),
    ),
  ];
}

let generation = 0;
let firstRender = true;

async function render(): Promise<void> {
  const current = ++generation;
  const route = match(location.pathname);
  let view: View;
  try {
    view = (await loaders[route.view]()).default;
  } catch (error) {
    const failure = await chunkFailed();
    if (failure === "reloading" || current !== generation) return;
    console.warn("chunk failed to load", error);
    main.replaceChildren(...(failure === "offline" ? offline() : missingChunk()));
    main.querySelector<HTMLElement>("h1")?.focus();
    return;
  }
  if (current !== generation) return; // a later navigation won
  await view(main, route);
  if (current !== generation) return;
  rendered();
  // After a navigation, focus goes to the new view's heading, as a page load would
  // put a screen reader at the top, or to its message after a write ("… was saved."),
  // which a screen reader would not announce otherwise; on the first load it stays
  // where the browser puts it, so the skip link is still the first Tab stop.
  if (!firstRender) (main.querySelector<HTMLElement>("[data-flash]") ?? main.querySelector<HTMLElement>("h1"))?.focus();
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
