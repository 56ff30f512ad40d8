import { h } from "../dom";
import { href } from "../router";
import type { View } from "./view";
import { title } from "./common";

const missing: View = async (main) => {
  main.replaceChildren(
    title("Page not found"),
    h("p", {}, "There is nothing at this address in the Things app. ", h("a", { href: href("/") }, "See all things"), "."),
  );
};

export default missing;
