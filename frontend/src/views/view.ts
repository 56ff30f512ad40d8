import type { Route } from "../router";

/** Renders one route into <main>; resolves once its first content is shown. */
export type View = (main: HTMLElement, route: Route) => Promise<void>;
