import { things, type Sort, type ThingPage } from "../api";
import { formatDate, h } from "../dom";
import { href, navigate } from "../router";
import type { View } from "./view";
import { errorState, loading, takeFlash, title } from "./common";

const SORTS: [Sort, string][] = [
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
  ["created", "Oldest first"],
  ["-created", "Newest first"],
]; // the order and labels of the server-rendered list (app.things.SORT_LABELS)

function isSort(value: string | null): value is Sort {
  return SORTS.some(([sort]) => sort === value);
}

const list: View = async (main, _route, signal) => {
  const params = new URLSearchParams(location.search);
  const q = params.get("q") ?? "";
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
    { class: "row g-2 align-items-end mb-3", role: "search", onsubmit: (event: Event) => { event.preventDefault(); go({ q: search.value.trim(), sort: order.value, page: "1" }); } },
    h("div", { class: "col-sm-6" }, h("label", { class: "form-label", for: "q" }, "Name contains"), search),
    h("div", { class: "col-sm-4" }, h("label", { class: "form-label", for: "sort" }, "Sort by"), order),
    h("div", { class: "col-sm-2 d-grid" }, h("button", { type: "submit", class: "btn btn-outline-primary" }, "Apply")),
  );
  const results = h("div", {}, loading());
  main.replaceChildren(
    h("div", { class: "d-flex flex-wrap justify-content-between align-items-center gap-2" }, title("Things", page > 1 ? `Things (page ${page}) · Shipshape` : "Things · Shipshape"), h("a", { class: "btn btn-primary", href: href("/things/new") }, "New thing")),
    ...takeFlash(),
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
    show(again, loading(again));
    let data: ThingPage;
    try {
      data = await things.list({ q, sort, page }, signal);
    } catch (error) {
      if (signal.aborted) return; // the user has left: nothing to say
      show(again, errorState(error, () => void load(true)));
      return;
    }
    if (data.items.length === 0 && data.total > 0) {
      const last = String(data.pages);
      show(again, h("p", { class: "text-body-secondary", tabindex: "-1", "data-no-such-page": true }, `There is no page ${page}; the last page is ${last}. `, h("a", { href: url({ page: last }) }, "Go to the last page"), "."));
      return;
    }
    if (data.items.length === 0) {
      show(again, h("p", { class: "text-body-secondary", tabindex: "-1" }, q ? `No things match “${q}”.` : "No things yet. ", q ? null : h("a", { href: href("/things/new") }, "Add the first one"), "."));
      return;
    }
    const rows = data.items.map((thing) =>
      h("tr", {}, h("td", {}, h("a", { href: href(`/things/${encodeURIComponent(thing.id)}`) }, thing.name)), h("td", { class: "text-body-secondary" }, formatDate(thing.created_at))),
    );
    const pager = h(
      "nav",
      { "aria-label": "Pages" },
      h(
        "ul",
        { class: "pagination" },
        h("li", { class: page <= 1 ? "page-item disabled" : "page-item" }, h("button", { type: "button", class: "page-link", disabled: page <= 1, onclick: () => go({ page: String(page - 1) }) }, "Previous")),
        h("li", { class: "page-item disabled" }, h("span", { class: "page-link" }, `Page ${data.page} of ${Math.max(data.pages, 1)}`)),
        h("li", { class: page >= data.pages ? "page-item disabled" : "page-item" }, h("button", { type: "button", class: "page-link", disabled: page >= data.pages, onclick: () => go({ page: String(page + 1) }) }, "Next")),
      ),
    );
    show(
      again,
      h("p", { class: "text-body-secondary", role: "status", tabindex: "-1" }, `${data.total} ${data.total === 1 ? "thing" : "things"}`),
      h(
        "table",
        { class: "table table-hover align-middle" },
        // Named for whoever moves by table (WCAG 1.3.1), in the server page's words.
        h("caption", { class: "visually-hidden" }, `Things, ${(SORTS.find(([value]) => value === sort)?.[1] ?? "").toLowerCase()}${data.pages > 1 ? `, page ${data.page} of ${data.pages}` : ""}`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Created"))),
        h("tbody", {}, ...rows),
      ),
      ...(data.pages > 1 ? [pager] : []),
    );
  };
  await load();
};

export default list;
