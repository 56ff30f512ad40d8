// A lazy chunk that failed to load: a deploy or an outage?
//
// After a deploy the chunks this index names are gone (404), so load the new
// index, once; a second failure in a row says so instead of looping, and a page
// that rendered clears the mark. When the server does not answer at all, a
// reload would only swap the page for the browser's own error page, so the
// page says so and offers to try again: a reload, once the server answers (the
// browser keeps a module that failed to load as failed until the page goes).
//
// Vite reports a failed lazy import as `vite:preloadError`, and when nothing
// cancels the event, the import rejects. No listener cancels it: a listener
// must choose at once, before the server could say whether it is there, so the
// choice is made where the import is awaited (`render` in main.ts).

const MARK = "shipshape:reloaded-for-chunks";

export type ChunkFailure = "reloading" | "missing" | "offline";

export function reloadOnce(): boolean {
  if (sessionStorage.getItem(MARK) !== null) return false;
  sessionStorage.setItem(MARK, String(Date.now()));
  location.reload();
  return true;
}

export function rendered(): void {
  sessionStorage.removeItem(MARK);
}

// What the probe below asks for: a file at the build's root (public/robots.txt), which
// every deploy has, answered 200 by the serving layer, which is never rate limited. Not
// location.href: a fetch is not a navigation, so the app answers it 404 by design, and
// Chromium logs every 404 as an error; nor the entry module (import.meta.url), whose
// hashed name a deploy removes as it does the chunks'.
const PROBE = `${import.meta.env.BASE_URL}robots.txt`;

/** Whether the app answers: any status under 500 (the SPA's files are never limited).
 * A 5xx is a proxy's word for an app that is down (502, 503, 504), and no answer in
 * a few seconds is a connection that hangs: neither is the app's. */
async function serverAnswers(): Promise<boolean> {
  try {
    const response = await fetch(PROBE, { method: "HEAD", cache: "no-store", signal: AbortSignal.timeout(5000) });
    return response.status < 500;
  } catch {
    return false;
  }
}

/** Reload the page if the server answers now; false (and no reload) if it still does not. */
export async function reloadWhenBack(): Promise<boolean> {
  if (!(await serverAnswers())) return false;
  location.reload();
  return true;
}

/** What to do about a chunk that failed to load; "reloading" when the page is going. */
export async function chunkFailed(): Promise<ChunkFailure> {
  if (!(await serverAnswers())) return "offline";
  return reloadOnce() ? "reloading" : "missing";
}
