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
  ) {
    super(message);
  }
}

export const API = "/api/things";

/** The token the index carries in <meta name="csrf-token">, bound to the session cookie. */
export function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";
}

async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached. Check your connection, then try again.");
  }
  if (response.status === 204) return undefined as T;
  const data: unknown = (response.headers.get("Content-Type") ?? "").includes("json")
    ? await response.json().catch(() => null)
    : null;
  if (!response.ok) {
    const error = (data ?? {}) as Partial<ErrorBody>;
    throw new ApiError(
      response.status,
      error.code ?? "error",
      error.message ?? `The server answered ${response.status} ${response.statusText}.`,
      error.fields ?? {},
      error.current,
    );
  }
  return data as T;
}

export const things = {
  list(params: { q?: string; sort?: Sort; page?: number }): Promise<ThingPage> {
    const query = new URLSearchParams();
    if (params.q) query.set("q", params.q);
    if (params.sort) query.set("sort", params.sort);
    if (params.page && params.page > 1) query.set("page", String(params.page));
    const search = query.toString();
    return call("GET", search ? `${API}?${search}` : API);
  },
  get(id: string): Promise<Thing> {
    return call("GET", `${API}/${encodeURIComponent(id)}`);
  },
  create(input: ThingInput): Promise<Thing> {
    return call("POST", API, input);
  },
  update(id: string, input: ThingInput & { version: number }): Promise<Thing> {
    return call("PUT", `${API}/${encodeURIComponent(id)}`, input);
  },
  remove(id: string): Promise<void> {
    return call("DELETE", `${API}/${encodeURIComponent(id)}`);
  },
};
