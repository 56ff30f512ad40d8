import { ApiError, things, type Sort, type ThingPage } from "../api";
import { h, icon, time, truncate } from "../dom";
import { href, navigate } from "../router";
import type { View } from "./view";
import { errorState, loading, pageTitle, strip, takeFlash, title } from "./common";

const SORTS: [Sort, string][] = [
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
  ["created", "Oldest first"],
  ["-created", "Newest first"],
]; // the order and labels of the server-rendered list (app.things.SORT_LABELS)

function isSort(value: string | null): value is Sort {
  return SORTS.some(([sort]) => sort === value);
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const LABELS: Record<string, string> = { q: "filter", sort: "sort", page: "page" }; // app.things._QUERY_LABELS

/** Whether a parameter's name or value, its %-escapes read as bytes, is UTF-8, as the
 * server reads it: a malformed escape (`%zz`, a lone `%`) is text, kept as it is. */
function isText(piece: string): boolean {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < piece.length; i++) {
    if (/^%[0-9a-fA-F]{2}$/.test(piece.slice(i, i + 3))) {
      bytes.push(Number.parseInt(piece.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...encoder.encode(piece[i] === "+" ? " " : piece[i]));
  }
  try {
    STRICT_UTF8.decode(new Uint8Array(bytes));
    return true;
  } catch {
    return false;
  }
}

/** What the server says of an address whose parameter is not UTF-8 (`q=%ff`), or null.
 * URLSearchParams would read it as U+FFFD and search for that, where the server answers
 * 400 (app.things.ListQuery.from_query_string): the same words, without asking it. */
function unreadable(search: string): string | null {
  for (const part of search.replace(/^\?/, "").split("&")) {
    const [name, value = ""] = part.split(/=(.*)/s);
    if (!isText(name) || !isText(value)) {
      return `The ${LABELS[name] ?? "query string"} is not valid UTF-8 text`;
    }
  }
  return null;
}

const list: View = async (main, _route, signal) => {
  const params = new URLSearchParams(location.search);
  const q = strip(params.get("q") ?? ""); // as the server strips it, so the count quotes it as it does
  const sortParam = params.get("sort");
  const sort: Sort = isSort(sortParam) ? sortParam : "name";
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);

  const url = (changes: Record<string, string>) => {
    const next = new URLSearchParams({ q, sort, page: String(page), ...changes });
    for (const [key, value] of [...next]) if (!value || (key === "page" && value === "1") || (key === "sort" && value === "name")) next.delete(key);
    const search = next.toString();
    return href("/things/") + (search ? `?${search}` : "");
  };
  const go = (changes: Record<string, string>) => navigate(url(changes));

  const search = h("input", { type: "search", class: "form-control", id: "q", name: "q", value: q, maxlength: 200 }); // the API's bound on q, as the server page's
  const order = h("select", { class: "form-select", id: "sort", name: "sort" }, ...SORTS.map(([value, label]) => h("option", { value, selected: value === sort }, label)));
  const filters = h(
    "form",
    { class: "row g-2 align-items-end mb-3", role: "search", onsubmit: (event: Event) => { event.preventDefault(); go({ q: strip(search.value), sort: order.value, page: "1" }); } },
    h("div", { class: "col-sm-6 col-lg-5" }, h("label", { class: "form-label", for: "q" }, "Name contains"), search),
    h("div", { class: "col-sm-4 col-lg-3" }, h("label", { class: "form-label", for: "sort" }, "Sort by"), order),
    h("div", { class: "col-auto" }, h("button", { type: "submit", class: "btn btn-secondary" }, "Apply")),
  );
  const results = h("div", {}, loading());
  // The server's list page's CSV of the same search, every page of it: a download, outside BASE.
  const csv = new URLSearchParams({ q, sort });
  for (const [key, value] of [...csv]) if (!value || (key === "sort" && value === "name")) csv.delete(key);
  const download = "/things/download" + (csv.toString() ? `?${csv}` : "");
  // The server list's title: "Things (page 2) · Shipshape"; "Error: " first while the
  // results are an error or a page past the last, as its error pages' titles say.
  const named = page > 1 ? `Things (page ${page})` : "Things";
  const failed = () => { document.title = pageTitle(named, true); };
  const heading = title("Things", pageTitle(named), "me-auto mb-0");
  main.replaceChildren(
    ...takeFlash(),
    h(
      "div",
      { class: "d-flex flex-wrap align-items-center gap-2 mb-3" },
      heading,
      h("a", { class: "btn btn-outline-secondary", href: download, download: true }, icon("download"), "Download CSV"),
      h("a", { class: "btn btn-primary", href: href("/things/new") }, icon("plus-lg"), "Add a thing"),
    ),
    filters,
    results,
  );

  // "Try again" redraws the results in place, the button with them: focus goes to what
  // replaces it ("Loading…", then the error, the count or the message), not to <body>,
  // unless the user has put it elsewhere meanwhile (the filters).
  const show = (again: boolean, ...children: HTMLElement[]) => {
    results.replaceChildren(...children);
    if (again && document.activeElement === document.body) children[0]?.focus();
  };
  const load = async (again = false) => {
    document.title = pageTitle(named); // "Try again": no error until one is shown again
    show(again, loading(again));
    let data: ThingPage;
    try {
      const refused = unreadable(location.search);
      if (refused !== null) throw new ApiError(400, "invalid_query", refused);
      data = await things.list({ q, sort: sortParam ?? sort, page: params.get("page") ?? undefined }, signal);
    } catch (error) {
      if (signal.aborted) return; // the user has left: nothing to say
      failed();
      show(again, errorState(error, () => void load(true)));
      return;
    }
    if (data.items.length === 0 && data.total > 0) {
      const last = String(data.pages);
      failed(); // the server's answer is a 404 page
      show(again, h("p", { class: "text-body-secondary", tabindex: "-1", "data-no-such-page": true }, `There is no page ${page}; the last page is ${last}. `, h("a", { href: url({ page: last }) }, "Go to the last page"), "."));
      return;
    }
    // The count, or that there is nothing, in the server list's words: a status, which
    // "Try again" focuses.
    const first = (data.page - 1) * data.per_page + 1;
    const matching = q ? ` with a name containing “${q}”` : "";
    const count = data.total === 0
      ? (q ? `No things have a name containing “${q}”.` : "There are no things yet.")
      : `Showing ${first}–${first + data.items.length - 1} of ${data.total} ${data.total === 1 ? "thing" : "things"}${matching}.`;
    const status = h("p", { class: "text-body-secondary text-break", role: "status", tabindex: "-1" }, count);
    if (data.items.length === 0) {
      show(again, status);
      return;
    }
    const rows = data.items.map((thing) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: href(`/things/${encodeURIComponent(thing.id)}`) }, thing.name)),
        h("td", { class: "text-break" }, truncate(thing.description)),
        h("td", {}, time(thing.created_at)),
      ),
    );
    // Links, as the server's pager has: each page has its address, to open in a new tab or
    // copy; a plain click is routed here, with no page load (router.ts).
    const numbers: number[] = [];
    for (let number = Math.max(1, data.page - 3); number <= Math.min(data.pages, data.page + 3); number++) numbers.push(number);
    const pager = h(
      "nav",
      { "aria-label": "Pages" },
      h(
        "ul",
        { class: "pagination flex-wrap" },
        data.page > 1 ? h("li", { class: "page-item" }, h("a", { class: "page-link", href: url({ page: String(data.page - 1) }), rel: "prev" }, "Previous")) : null,
        ...numbers.map((number) =>
          h("li", { class: number === data.page ? "page-item active" : "page-item" }, h("a", { class: "page-link", href: url({ page: String(number) }), "aria-current": number === data.page ? "page" : undefined }, number)),
        ),
        data.page < data.pages ? h("li", { class: "page-item" }, h("a", { class: "page-link", href: url({ page: String(data.page + 1) }), rel: "next" }, "Next")) : null,
      ),
    );
    show(
      again,
      status,
      h(
        "div",
        { class: "table-responsive" },
        h(
          "table",
          { class: "table table-hover align-middle" },
          // Named for whoever moves by table (WCAG 1.3.1), in the server page's words.
          h("caption", { class: "visually-hidden" }, `Things, ${(SORTS.find(([value]) => value === sort)?.[1] ?? "").toLowerCase()}${data.pages > 1 ? `, page ${data.page} of ${data.pages}` : ""}`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Description"), h("th", { scope: "col" }, "Added"))),
          h("tbody", {}, ...rows),
        ),
      ),
      ...(data.pages > 1 ? [pager] : []),
    );
  };
  await load();
};

export default list;
