// The Things JSON API (/api/things), with the CSRF header on every unsafe request.

export interface Thing {
  id: string;
  name: string;
  description: string;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface ThingPage {
  items: Thing[];
  total: number;
  page: number;
  pages: number;
  per_page: number;
}

export interface ThingInput {
  name: string;
  description: string;
}

export type Sort = "name" | "-name" | "created" | "-created";

interface ErrorBody {
  error: number;
  code: string;
  message: string;
  fields?: Record<string, string[]>;
  current?: Thing;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string[]> = {},
    readonly current?: Thing,
    /** A 429's Retry-After, in seconds. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export const API = "/api/things";

// The token starts as the one the index carries in <meta name="csrf-token">,
// bound to the session cookie. When the session changes under the page (its
// cookie cleared or expired, the server's key rotated), the server refuses it
// with `csrf_failed`, before the view runs, so nothing was saved: then ask for
// the new session's token and send the write once more.
let token = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";

async function freshToken(): Promise<void> {
  token = (await call<{ csrf_token: string }>("GET", "/api/csrf-token")).csrf_token;
}

// A read takes the signal of the view that asked (main.ts aborts it when the user
// navigates on): a view the user has left neither waits on its requests nor sends them
// again, and its abort is the rejection, `signal.reason`, never an ApiError to show.
async function call<T>(method: string, url: string, body?: unknown, extra: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
  try {
    return await patiently<T>(method, url, body, extra, signal);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "csrf_failed")) throw error;
    await freshToken();
    return patiently<T>(method, url, body, extra, signal);
  }
}

/** The longest Retry-After (seconds) waited out before a request is sent once more. */
const PATIENCE = 2;

// A 429 refuses a request before it runs, so nothing was done: when the server asks
// for a short wait, wait and send it once more. The token renewal above makes three
// requests in a moment, one more than the default 2 a second allows.
async function patiently<T>(method: string, url: string, body: unknown, extra: Record<string, string>, signal?: AbortSignal): Promise<T> {
  try {
    return await send<T>(method, url, body, extra, signal);
  } catch (error) {
    const wait = error instanceof ApiError ? error.retryAfter : undefined;
    if (wait === undefined || wait > PATIENCE) throw error;
    await pause(wait * 1000, signal);
    return send<T>(method, url, body, extra, signal);
  }
}

/** Waits `ms`, or rejects as soon as `signal` aborts: a view that was left sends nothing more. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const stop = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}

async function send<T>(method: string, url: string, body: unknown, extra: Record<string, string>, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = token;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch {
    signal?.throwIfAborted(); // the view was left: not the network's fault
    throw new ApiError(0, "network", "The server could not be reached. Check your connection, then try again.");
  }
  if (response.status === 204) return undefined as T;
  const data: unknown = (response.headers.get("Content-Type") ?? "").includes("json")
    ? await response.json().catch(() => null)
    : null;
  signal?.throwIfAborted(); // a body the abort cut off reads as null, not as the answer
  if (!response.ok) {
    const error = (data ?? {}) as Partial<ErrorBody>;
    throw new ApiError(
      response.status,
      error.code ?? "error",
      error.message ?? `The server answered ${response.status} ${response.statusText}.`,
      error.fields ?? {},
      error.current,
      response.status === 429 ? retryAfter(response.headers.get("Retry-After")) : undefined,
    );
  }
  return data as T;
}

export const things = {
  /** `sort` and `page` as the address gives them: the API refuses what it cannot read
   * (a 400 that says what it takes, as the server's list page does), where a guess here
   * would show page 1 under an address that says otherwise. */
  list(params: { q?: string; sort?: string; page?: string }, signal?: AbortSignal): Promise<ThingPage> {
    const query = new URLSearchParams();
    if (params.q) query.set("q", params.q);
    if (params.sort) query.set("sort", params.sort);
    if (params.page && params.page !== "1") query.set("page", params.page);
    const search = query.toString();
    return call("GET", search ? `${API}?${search}` : API, undefined, {}, signal);
  },
  get(id: string, signal?: AbortSignal): Promise<Thing> {
    return call("GET", `${API}/${encodeURIComponent(id)}`, undefined, {}, signal);
  },
  // The writes take no signal: the user asked for them, and one cut off on its way
  // may have been saved all the same.
  create(input: ThingInput): Promise<Thing> {
    return call("POST", API, input);
  },
  update(id: string, input: ThingInput & { version: number }): Promise<Thing> {
    return call("PUT", `${API}/${encodeURIComponent(id)}`, input);
  },
  /** Deletes only the version the user saw: a newer one is a 412 that carries it as `current`. */
  remove(id: string, version: number): Promise<void> {
    return call("DELETE", `${API}/${encodeURIComponent(id)}`, undefined, { "If-Match": `"${version}"` });
  },
};

/** Retry-After in seconds (RFC 9110 §10.2.3: the delay form; a date counts as no hint). */
function retryAfter(value: string | null): number | undefined {
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
}
