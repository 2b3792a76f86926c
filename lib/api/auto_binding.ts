/**
 * Names and opt-in rules of generated Bindings, ported from the Go prototype so a switch from it finds the
 * same Binding names (and so the same Backrest repos) instead of creating duplicates. Rules: these
 * functions return byte-for-byte what the prototype's `desiredBindingName` / `isAutoBindingAllowed`
 * return, except where the prototype's name would be shared by two objects ({@linkcode uniqueBindingName}).
 */

import { sha256 } from "../sha256.ts";
import { ANNOTATION_BINDING, VOLSYNC_KIND_INFO, type VolSyncKind } from "./constants.ts";
import type { BindingPolicy } from "./operator_config.ts";

const MAX_NAME = 63;
const SUFFIX_HEX = 8;

/** Go's unicode.ToLower maps these two non-ASCII runes into a-z; everything else non-ASCII stays non-ASCII. */
const GO_LOWER_SPECIAL: Record<string, string> = { "\u0130": "i", "\u212A": "k" };

function goLowerAsciiOnly(ch: string): string {
  const special = GO_LOWER_SPECIAL[ch];
  if (special !== undefined) return special;
  return ch >= "A" && ch <= "Z" ? ch.toLowerCase() : ch;
}

const DNS1123_ALREADY = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * The prototype's `dns1123Safe`: lowercase, every run of characters outside `[a-z0-9]` becomes one `-`,
 * leading and trailing `-` removed, `x` when nothing is left.
 */
export function dns1123Safe(s: string): string {
  // Most names already are (every VolSync object's is indexed by it): no character-by-character copy.
  if (DNS1123_ALREADY.test(s)) return s;
  let out = "";
  let lastDash = false;
  for (const raw of s) {
    const ch = goLowerAsciiOnly(raw);
    if ((ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9")) {
      out += ch;
      lastDash = false;
    } else if (!lastDash) {
      out += "-";
      lastDash = true;
    }
  }
  out = out.replace(/^-+|-+$/g, "");
  return out === "" ? "x" : out;
}

/** The name prefix of generated Bindings for `kind`: `bvsb-rs-` or `bvsb-rd-`. */
export function bindingNamePrefix(kind: VolSyncKind): string {
  return VOLSYNC_KIND_INFO[kind].generatedPrefix;
}

/**
 * The generated Binding's name for a VolSync object: `bvsb-rs-<name>` / `bvsb-rd-<name>` made DNS-1123 safe;
 * above 63 characters it is cut to 54 and `-<first 8 hex of sha256(prefix + original name)>` appended.
 */
export function bindingNameFor(kind: VolSyncKind, volsyncName: string): string {
  const prefix = bindingNamePrefix(kind);
  const name = dns1123Safe(prefix + volsyncName);
  if (name.length <= MAX_NAME) return name;
  const suffix = sha256().update(prefix + volsyncName).digest("hex").slice(0, SUFFIX_HEX);
  return `${name.slice(0, MAX_NAME - 1 - SUFFIX_HEX)}-${suffix}`;
}

/**
 * The generated Binding's name, never shared by two objects: the prototype's name ({@linkcode
 * bindingNameFor}) unless another object in the namespace (`others`, their names) maps to it too; then the
 * object whose name it spells exactly keeps it and the others get the prototype's long-name form, cut and
 * suffixed with a hash of their own name (`db-data` keeps `bvsb-rs-db-data`, `db.data` becomes
 * `bvsb-rs-db-data-<8 hex>`).
 */
export function uniqueBindingName(kind: VolSyncKind, volsyncName: string, others: readonly string[]): string {
  const prefix = bindingNamePrefix(kind);
  const name = bindingNameFor(kind, volsyncName);
  if (name === prefix + volsyncName) return name;
  const shared = others.some((o) => o !== volsyncName && bindingNameFor(kind, o) === name);
  if (!shared) return name;
  const suffix = sha256().update(prefix + volsyncName).digest("hex").slice(0, SUFFIX_HEX);
  return `${
    dns1123Safe(prefix + volsyncName).slice(0, MAX_NAME - 1 - SUFFIX_HEX).replace(/-+$/, "")
  }-${suffix}`;
}

/** The `volsync-ref` annotation's value: `<lowercase kind>/<name>`. */
export function volsyncRefValue(kind: VolSyncKind, name: string): string {
  return `${kind.toLowerCase()}/${name}`;
}

/**
 * Reads the opt-in annotation's value: `true`/`1`/`yes` is true, `false`/`0`/`no` false (trimmed,
 * case-insensitive); anything else, or no annotation, is `undefined`.
 */
export function parseBindingOptIn(value: string | undefined): boolean | undefined {
  const v = value?.trim().toLowerCase();
  if (v === "true" || v === "1" || v === "yes") return true;
  if (v === "false" || v === "0" || v === "no") return false;
  return undefined;
}

/**
 * Whether `policy` wants a Binding for an object with `annotations`: never under Disabled, and never
 * when the object opts out; under All unless opted out; under Annotated only when opted in.
 */
export function autoBindingWanted(
  policy: BindingPolicy,
  annotations: Readonly<Record<string, string>>,
): boolean {
  if (policy === "Disabled") return false;
  const optIn = parseBindingOptIn(annotations[ANNOTATION_BINDING]);
  if (optIn === false) return false;
  return policy === "All" || optIn === true;
}
