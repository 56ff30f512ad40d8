// Recovery from a deploy: the chunks this index names are gone (404), so load
// the new index, once. A second failure in a row shows an error instead of
// looping; a page that rendered clears the mark.

const MARK = "shipshape:reloaded-for-chunks";

export function reloadOnce(): boolean {
  if (sessionStorage.getItem(MARK) !== null) return false;
  sessionStorage.setItem(MARK, String(Date.now()));
  location.reload();
  return true;
}

export function rendered(): void {
  sessionStorage.removeItem(MARK);
}

export function watchPreloadErrors(): void {
  window.addEventListener("vite:preloadError", (event) => {
    if (reloadOnce()) event.preventDefault(); // the reload replaces the page
  });
}
