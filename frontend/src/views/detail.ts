import { things, type Thing } from "../api";
import { formatDate, h } from "../dom";
import { href, navigate } from "../router";
import type { View } from "./view";
import { errorState, loading, title } from "./common";

const detail: View = async (main, route) => {
  if (route.view !== "detail") return;
  main.replaceChildren(title("Thing"), loading());
  let thing: Thing;
  try {
    thing = await things.get(route.id);
  } catch (error) {
    main.replaceChildren(title("Thing"), errorState(error, () => void detail(main, route)), h("a", { href: href("/") }, "Back to all things"));
    return;
  }

  const problem = h("div", { "aria-live": "polite" });
  const confirm = h(
    "div",
    { class: "alert alert-warning d-none", role: "alert", "data-confirm-delete": true },
    h("p", {}, "Delete “", thing.name, "”? This cannot be undone."),
    h("button", { type: "button", class: "btn btn-danger me-2", "data-confirm": true, onclick: async (event: Event) => {
      const button = event.currentTarget as HTMLButtonElement;
      button.disabled = true;
      try {
        await things.remove(thing.id);
      } catch (error) {
        button.disabled = false;
        problem.replaceChildren(errorState(error));
        return;
      }
      navigate(href("/"), { replace: true });
    } }, "Delete"),
    h("button", { type: "button", class: "btn btn-outline-secondary", onclick: () => confirm.classList.add("d-none") }, "Cancel"),
  );

  main.replaceChildren(
    title(thing.name),
    h("p", { class: "pre-wrap" }, thing.description || h("span", { class: "text-body-secondary" }, "No description.")),
    h(
      "dl",
      { class: "row small text-body-secondary" },
      h("dt", { class: "col-sm-2" }, "Created"), h("dd", { class: "col-sm-10" }, formatDate(thing.created_at)),
      h("dt", { class: "col-sm-2" }, "Updated"), h("dd", { class: "col-sm-10" }, formatDate(thing.updated_at)),
    ),
    problem,
    confirm,
    h(
      "div",
      { class: "d-flex gap-2" },
      h("a", { class: "btn btn-primary", href: href(`/things/${encodeURIComponent(thing.id)}/edit`) }, "Edit"),
      h("button", { type: "button", class: "btn btn-outline-danger", onclick: () => confirm.classList.remove("d-none") }, "Delete…"),
      h("a", { class: "btn btn-link", href: href("/") }, "All things"),
    ),
  );
};

export default detail;
