// Client-side routes under the mount (import.meta.env.BASE_URL, "/app/").
// Each view is its own chunk, loaded on first use: after a deploy, a browser
// still holding the old index asks for chunks that are gone, and gets 404.

export const BASE = import.meta.env.BASE_URL.replace(/\/$/, ""); // "/app"

export type Route =
  | { view: "list" }
  | { view: "new" }
  | { view: "detail"; id: string }
  | { view: "edit"; id: string }
  | { view: "missing" };

export function match(pathname: string): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  let parts: string[];
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return { view: "missing" }; // malformed percent-encoding (/app/%E9): no such address
  }
  if (parts.length === 0) return { view: "list" };
  if (parts[0] !== "things") return { view: "missing" };
  if (parts.length === 1) return { view: "list" };
  if (parts.length === 2) return parts[1] === "new" ? { view: "new" } : { view: "detail", id: parts[1] };
  if (parts.length === 3 && parts[2] === "edit") return { view: "edit", id: parts[1] };
  return { view: "missing" };
}

/** The URL of a route, under the mount. */
export function href(path: string): string {
  return BASE + path;
}

let onNavigate: () => void = () => undefined;
// The address the view on screen was drawn for, without its fragment.
let drawn = "";

// Back, Forward and a reload return to where the user was on the page, as they do
// between page loads. The browser's own restoring scrolls before the view is drawn again
// ("Loading…" is short), so the app keeps each entry's place in its history state:
// written as the user scrolls (debounced) and before a navigation, read when the route
// changes (before "Loading…" shortens the page and the browser clamps the scroll to it),
// and scrolled to by placeScroll once the view is drawn.
let scrolled: number | undefined;
let arrival: number | null = null; // the entry's saved place; null for one not seen before
let drawing = false; // the page's height changes under the user: not their scrolling
let firstView = true;

function rememberScroll(): void {
  window.clearTimeout(scrolled);
  if (drawing) return;
  try {
    history.replaceState({ ...(history.state as object | null), scrollY: window.scrollY }, "");
  } catch {
    // Safari refuses more than 100 in 30 s: the place is not kept, and the navigation goes on.
  }
}

function route(): void {
  window.clearTimeout(scrolled); // a write still due would land on the new entry
  drawing = true;
  const y = (history.state as { scrollY?: unknown } | null)?.scrollY;
  arrival = typeof y === "number" ? y : null;
  drawn = location.pathname + location.search;
  onNavigate();
}

/** Once the view is drawn (or has failed): the entry's saved place, or the top for a new
 * one, as a page load; a first load with no place saved stays where the browser put it
 * (at a #fragment). */
export function placeScroll(): void {
  drawing = false;
  if (arrival !== null || !firstView) window.scrollTo(0, arrival ?? 0);
  firstView = false;
}

export function start(render: () => void): void {
  onNavigate = render;
  // The server answers /app/index.html with the index too (a bookmark, a proxy's default
  // page): the list, at its own address.
  if (location.pathname === `${BASE}/index.html`) {
    history.replaceState(history.state, "", `${BASE}/${location.search}${location.hash}`);
  }
  history.scrollRestoration = "manual";
  window.addEventListener("scroll", () => {
    window.clearTimeout(scrolled);
    if (!drawing) scrolled = window.setTimeout(rememberScroll, 200);
  }, { passive: true });
  // Following a link to a fragment of this page (the skip link, an error summary's
  // link to its field) fires popstate too: the browser moves focus there, and the
  // view, with what the user has typed, stays as it is.
  window.addEventListener("popstate", () => {
    if (location.pathname + location.search !== drawn) route();
  });
  // Links inside the app change the route without reloading the page.
  document.addEventListener("click", (event) => {
    const link = (event.target as Element | null)?.closest?.("a");
    if (
      !link ||
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey || event.ctrlKey || event.shiftKey || event.altKey ||
      link.target ||
      (link.hash !== "" && link.pathname === location.pathname) ||
      link.origin !== location.origin ||
      !(link.pathname === BASE || link.pathname.startsWith(BASE + "/"))
    ) {
      return;
    }
    event.preventDefault();
    navigate(link.pathname + link.search);
  });
  route();
}

export function navigate(url: string, { replace = false } = {}): void {
  if (replace) history.replaceState(null, "", url);
  else {
    rememberScroll();
    history.pushState(null, "", url);
  }
  route();
}
