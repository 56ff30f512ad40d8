import type { Route } from "../router";

/** Renders one route into <main>; resolves once its first content is shown. `signal` aborts
 * when the user navigates on: the view's requests stop, and it draws nothing more. */
export type View = (main: HTMLElement, route: Route, signal: AbortSignal) => Promise<void>;
