// The example frontend's build: Vite, served by Shipshape's serving blueprint at /app/.
//
// `make frontend` builds it into dist/ (then precompresses it with Shipshape's
// own compressor); `make frontend-dev` runs this config's dev server in front
// of the app (see docs/spa.md). Production never runs Node.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

const BASE = "/app/"; // the app's SHIPSHAPE_SPA_MOUNT, with a trailing slash
const APP = process.env.SHIPSHAPE_URL ?? `http://${process.env.HOST ?? "127.0.0.1"}:${process.env.PORT ?? "5000"}`;

/**
 * Development only: the index the browser gets from the dev server carries the
 * app's CSRF token and session cookie, taken from the app's own index, so that
 * the API accepts the frontend's writes exactly as in production.
 */
function shipshapeIndex(): Plugin {
  return {
    name: "shipshape-index",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? "/").split("?")[0];
        const navigation = req.headers["sec-fetch-dest"] === "document" || (req.headers.accept ?? "").includes("text/html");
        if (req.method !== "GET" || !navigation || !(path + "/").startsWith(BASE) || /\.[A-Za-z0-9]+$/.test(path)) {
          next();
          return;
        }
        (async () => {
          const answer = await fetch(APP + BASE, { headers: { accept: "text/html", cookie: req.headers.cookie ?? "" } });
          const token = /<meta name="csrf-token" content="([^"]+)">/.exec(await answer.text())?.[1] ?? "";
          const source = await readFile(resolve(server.config.root, "index.html"), "utf8");
          const html = (await server.transformIndexHtml(req.url ?? BASE, source)).replace(
            "</head>",
            `<meta name="csrf-token" content="${token}">\n</head>`,
          );
          const cookies = answer.headers.getSetCookie();
          if (cookies.length > 0) res.setHeader("Set-Cookie", cookies);
          res.setHeader("Content-Type", "text/html; charset=utf-8");
          res.setHeader("Cache-Control", "no-cache");
          res.end(html);
        })().catch(next);
      });
    },
  };
}

export default defineConfig({
  base: BASE,
  // Vite writes this placeholder into every tag it emits and into a
  // <meta property="csp-nonce">, which its runtime reads for the tags it adds
  // later; Shipshape puts each response's nonce in its place.
  html: { cspNonce: "SHIPSHAPE_NONCE" },
  build: {
    outDir: "dist",
    assetsDir: "assets", // SHIPSHAPE_SPA_ASSETS: hashed names, served immutable
    // dist/.vite/manifest.json: every chunk the code loads later, which Shipshape
    // checks at start-up as it checks what index.html links (never served).
    manifest: true,
    emptyOutDir: true,
    target: "es2022",
  },
  server: {
    host: process.env.VITE_HOST ?? "127.0.0.1",
    port: Number(process.env.VITE_PORT ?? 5173),
    strictPort: true,
    // Everything outside BASE is the app's: its API and static files, and its own pages,
    // which the frontend links to (the navbar's /things/, the footer's /privacy, /cookies,
    // /accessibility), and Vite would answer with its "public base URL" 404. Vite's own
    // files are all under BASE (/app/@vite/client, /app/@fs/…, /app/src/…), as is /app,
    // where it serves the page to a navigation, as the app does. The browser's Host goes through (changeOrigin off;
    // Vite's short form turns it on), so the app compares a write's Origin with the
    // address the browser used, and its redirects stay on this server.
    proxy: {
      [`^/(?!${BASE.slice(1, -1)}(?:[/?#]|$))`]: { target: APP, changeOrigin: false },
    },
    // Bootstrap comes from the repository's node_modules, one folder up.
    fs: { allow: [".."] },
  },
  plugins: [shipshapeIndex()],
});
