import { ApiError, things, type Thing } from "../api";
import { h } from "../dom";
import { href, navigate } from "../router";
import type { View } from "./view";
import { breadcrumbs, errorState, failedTitle, flash, versionFacts, handOver, loading, pageTitle, redraw, strip, title } from "./common";

const LIMITS = { name: 64, description: 2000 };
// maxlength counts UTF-16 units, two for a character past U+FFFF (an emoji), where the
// API counts characters: the bound is the most a valid value can take, and the API's
// 422 says when there are too many characters.
const UNITS = 2;

const form: View = async (main, route, signal) => {
  const editing = route.view === "edit" ? route.id : null;
  let thing: Thing | null = null;
  if (editing !== null) {
    main.replaceChildren(...layout(breadcrumbs(["Things", href("/")], ["Edit"]), title("Edit thing"), loading()));
    try {
      thing = await things.get(editing, signal);
    } catch (error) {
      if (signal.aborted) return; // the user has left: <main> is another view's now
      main.replaceChildren(...layout(breadcrumbs(["Things", href("/")], ["Edit"]), failedTitle("Edit thing", error), errorState(error, () => void redraw(main, () => form(main, route, signal))), h("a", { href: href("/") }, "Back to all things")));
      return;
    }
  }
  let version = thing?.version ?? 0;
  const heading = thing ? `Edit “${thing.name}”` : "Add a thing"; // the server form's headings

  const name = h("input", { type: "text", class: "form-control", id: "name", name: "name", required: true, maxlength: UNITS * LIMITS.name, value: thing?.name ?? "", "aria-describedby": "name-help" });
  const description = h("textarea", { class: "form-control", id: "description", name: "description", rows: 5, maxlength: UNITS * LIMITS.description, "aria-describedby": "description-help" });
  description.value = thing?.description ?? "";
  const summary = h("div", { "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, editing ? "Save" : "Add thing"); // the server form's words

  const field = (input: HTMLInputElement | HTMLTextAreaElement, label: string, help: string) =>
    h("div", { class: "mb-3" }, h("label", { class: "form-label", for: input.id }, label), input, h("div", { class: "form-text", id: `${input.id}-help` }, help), h("div", { class: "invalid-feedback", id: `${input.id}-error` }));

  const showErrors = (fields: Record<string, string[]>) => {
    for (const input of [name, description]) {
      const messages = fields[input.name] ?? [];
      input.classList.toggle("is-invalid", messages.length > 0);
      input.setAttribute("aria-invalid", String(messages.length > 0));
      input.setAttribute("aria-describedby", messages.length > 0 ? `${input.id}-error ${input.id}-help` : `${input.id}-help`);
      const feedback = main.querySelector(`#${input.id}-error`);
      if (feedback) feedback.textContent = messages.join(" ");
    }
    const named = Object.entries(fields).filter(([, messages]) => messages.length > 0);
    if (named.length === 0) return;
    // As the server's form does on a refusal (WCAG 2.4.2); clearSummary takes it off again.
    document.title = pageTitle(heading, true);
    summary.replaceChildren(
      h("div", { class: "alert alert-danger", role: "alert", tabindex: "-1", "data-error-summary": true },
        h("h2", { class: "h6" }, "There is a problem"),
        h("ul", { class: "mb-0" }, ...named.map(([key, messages]) => h("li", {}, h("a", { href: `#${key}` }, messages.join(" ")))))),
    );
    summary.querySelector<HTMLElement>("[data-error-summary]")?.focus();
  };

  // The question of a conflict answered, or the form sent again: its "Error:" leaves the title.
  const clearSummary = () => {
    summary.replaceChildren();
    document.title = pageTitle(heading);
  };

  const onsubmit = async (event: Event) => {
    event.preventDefault();
    clearSummary();
    showErrors({}); // unmark the fields of the last attempt
    // Sent as typed: the server strips it (and says what else is wrong, in its words);
    // only a blank name is refused here, with the server's message, saving a request.
    const input = { name: name.value, description: description.value };
    const local: Record<string, string[]> = {};
    if (!strip(input.name)) local.name = ["Enter a name"];
    if (Object.keys(local).length > 0) return showErrors(local);
    submit.disabled = true;
    try {
      const saved = editing ? await things.update(editing, { ...input, version }) : await things.create(input);
      handOver(saved);
      flash(`“${saved.name}” was ${editing ? "saved" : "added"}.`);
      // A new entry, as the server form's redirect after a POST makes one: Back goes to
      // the form (drawn again with what is saved now). Replacing the edit's entry left two
      // entries of the thing's page in a row, and Back seemed to do nothing.
      navigate(href(`/things/${encodeURIComponent(saved.id)}`));
    } catch (error) {
      submit.disabled = false;
      // Invalid fields, or a name another thing has (409 name_taken): both name their fields.
      if (error instanceof ApiError && (error.status === 422 || error.code === "name_taken")) return showErrors(error.fields);
      if (error instanceof ApiError && error.status === 409 && error.current) {
        const current = error.current;
        // Their version in full, as the server's form and the delete conflict (detail.ts)
        // show it: "Keep mine" replaces all of it, their description too, and the user
        // decides having read it. Either answer removes the question, with the button that
        // had focus: focus goes to the form, its first field with their values, or its Save
        // button, as if pressed.
        const conflict = h("div", { class: "alert alert-warning", role: "alert", tabindex: "-1", "data-conflict": true },
            h("p", {}, "Someone else changed this thing while you were editing it, so nothing you typed was saved. It is now:"),
            versionFacts(current),
            h("p", {}, "Your version is still in the form below."),
            h("button", { type: "button", class: "btn btn-secondary btn-sm me-2", onclick: () => { name.value = current.name; description.value = current.description; version = current.version; clearSummary(); name.focus(); } }, "Load their version"),
            // Saves at once, what is in the form over their version (its number, which the
            // API checks), then goes on as any save: the thing's page, "… was saved.".
            h("button", { type: "button", class: "btn btn-primary btn-sm", onclick: () => { version = current.version; clearSummary(); submit.focus(); formElement.requestSubmit(submit); } }, "Keep mine, save over theirs"));
        summary.replaceChildren(conflict);
        document.title = pageTitle(heading, true);
        conflict.focus(); // as the server's form does: the question comes before the form
        return;
      }
      const failed = errorState(error);
      summary.replaceChildren(failed);
      document.title = pageTitle(heading, true);
      // Chromium takes focus off the Save button while it is disabled: without this it
      // would be left on <body>.
      failed.focus();
    }
  };

  const formElement = h("form", { novalidate: true, onsubmit: (event: Event) => void onsubmit(event) },
    field(name, "Name", `Up to ${LIMITS.name} characters. No two things may share a name.`),
    field(description, "Description", `Optional, up to ${LIMITS.description.toLocaleString("en")} characters.`),
    h("div", { class: "d-flex gap-2" }, submit, h("a", { class: "btn btn-link", href: editing ? href(`/things/${encodeURIComponent(editing)}`) : href("/") }, "Cancel")));
  const trail = thing
    ? breadcrumbs(["Things", href("/")], [thing.name, href(`/things/${encodeURIComponent(thing.id)}`)], ["Edit"])
    : breadcrumbs(["Things", href("/")], ["Add"]);
  main.replaceChildren(...layout(trail, title(heading), summary, formElement));
};

/** The server form's layout: its breadcrumbs, then the form in 8 of the 12 columns on a
 * large screen (a line of 30 to 50 em is easier to read than the page's width). */
function layout(trail: HTMLElement, ...content: HTMLElement[]): HTMLElement[] {
  return [trail, h("div", { class: "row" }, h("div", { class: "col-lg-8" }, ...content))];
}

export default form;
