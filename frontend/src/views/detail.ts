import { ApiError, things, type Thing } from "../api";
import { h, time } from "../dom";
import { href, navigate } from "../router";
import type { View } from "./view";
import { breadcrumbs, errorState, failedTitle, flash, versionFacts, loading, redraw, takeFlash, takeHandedOver, title } from "./common";

const detail: View = async (main, route, signal) => {
  if (route.view !== "detail") return;
  main.replaceChildren(breadcrumbs(["Things", href("/")], ["Thing"]), title("Thing"), loading());
  let thing: Thing;
  try {
    thing = takeHandedOver(route.id) ?? (await things.get(route.id, signal));
  } catch (error) {
    if (signal.aborted) return; // the user has left: <main> is another view's now
    main.replaceChildren(breadcrumbs(["Things", href("/")], ["Thing"]), failedTitle("Thing", error), errorState(error, () => void redraw(main, () => detail(main, route, signal))), h("a", { href: href("/") }, "Back to all things"));
    return;
  }

  const problem = h("div", { "aria-live": "polite" });
  // Delete only what the user saw: If-Match names its version, and a newer one
  // is shown to them to decide on, as the server-rendered delete page does.
  const remove = async (button: HTMLButtonElement, version: number) => {
    button.disabled = true;
    try {
      await things.remove(thing.id, version);
    } catch (error) {
      button.disabled = false;
      confirm.classList.add("d-none");
      problem.replaceChildren(notDeleted(error));
      // The button that had focus is hidden (or gone, with the last conflict): each kind of
      // alert notDeleted draws is focusable, so focus goes to what happened, not to <body>.
      problem.querySelector<HTMLElement>(".alert")?.focus();
      return;
    }
    flash(`“${thing.name}” was deleted.`);
    navigate(href("/"), { replace: true });
  };
  const notDeleted = (error: unknown): HTMLElement => {
    if (error instanceof ApiError && error.status === 404) {
      return h("div", { class: "alert alert-info", role: "alert", tabindex: "-1", "data-gone": true }, "This thing is already gone: someone else deleted it. ", h("a", { href: href("/") }, "See all things"), ".");
    }
    if (!(error instanceof ApiError && error.current)) return errorState(error);
    const current = error.current;
    return h(
      "div",
      { class: "alert alert-warning", role: "alert", tabindex: "-1", "data-conflict": true },
      h("p", {}, "Someone changed this thing since you opened it, so it was not deleted. It is now:"),
      versionFacts(current),
      h("button", { type: "button", class: "btn btn-danger btn-sm me-2", "data-delete-current": true, onclick: (event: Event) => void remove(event.currentTarget as HTMLButtonElement, current.version) }, "Delete this version"),
      h("button", { type: "button", class: "btn btn-outline-secondary btn-sm", onclick: () => void redraw(main, () => detail(main, route, signal)) }, "Show the new version"),
    );
  };
  const cancel = () => {
    confirm.classList.add("d-none");
    ask.focus();
  };
  // Escape is Cancel, as in a dialog: the keydown reaches the question while focus is in it.
  const confirm = h(
    "div",
    { class: "alert alert-warning d-none", role: "alert", tabindex: "-1", "data-confirm-delete": true, onkeydown: (event: Event) => { if ((event as KeyboardEvent).key === "Escape") { event.preventDefault(); cancel(); } } },
    h("p", {}, "Delete “", thing.name, "”? This cannot be undone."),
    h("button", { type: "button", class: "btn btn-danger me-2", "data-confirm": true, onclick: (event: Event) => void remove(event.currentTarget as HTMLButtonElement, thing.version) }, "Delete"),
    h("button", { type: "button", class: "btn btn-outline-secondary", onclick: cancel }, "Cancel"),
  );
  // The question comes before the button that asks it: focus goes to it, so that it is
  // read and the next Tab reaches its Delete (and Cancel brings focus back here).
  const ask = h("button", { type: "button", class: "btn btn-outline-danger", onclick: () => { confirm.classList.remove("d-none"); confirm.focus(); } }, "Delete…");

  main.replaceChildren(
    ...takeFlash(),
    breadcrumbs(["Things", href("/")], [thing.name]),
    title(thing.name),
    h("p", { class: "pre-wrap" }, thing.description || h("span", { class: "text-body-secondary" }, "No description.")),
    // The server page's facts, in its words, its times UTC to the second.
    h(
      "dl",
      { class: "row small text-body-secondary" },
      h("dt", { class: "col-sm-2" }, "Added"), h("dd", { class: "col-sm-10" }, time(thing.created_at, true)),
      h("dt", { class: "col-sm-2" }, "Last changed"), h("dd", { class: "col-sm-10" }, time(thing.updated_at, true), ` (version ${thing.version})`),
    ),
    problem,
    confirm,
    h(
      "div",
      { class: "d-flex gap-2" },
      h("a", { class: "btn btn-primary", href: href(`/things/${encodeURIComponent(thing.id)}/edit`) }, "Edit"),
      ask,
      h("a", { class: "btn btn-link", href: href("/") }, "All things"),
    ),
  );
};

export default detail;
