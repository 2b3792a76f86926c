/**
 * The restic flags a namespace user may have Backrest pass to restic (`spec.repo.extraFlags`). Backrest
 * splits each entry shell-style and expands `${...}` from its own environment before restic sees it, and
 * some restic flags run programs or read files in Backrest's pod; so only the flags below are admitted,
 * each with a value grammar that has no space, quote, backslash, `$` or `#` in it. Rules: an entry is one
 * flag; it is sent in one canonical spelling (`--name` or `--name=value`, `-o` as `--option=key=value`),
 * one token that shell splitting and expansion leave as it is; a flag (or an `-o` key) appears once, so
 * the sorted list means what the written one means.
 */

/** Value grammars (regular expression sources, anchored by the caller). */
const INT = "[0-9]{1,9}";
const DURATION = "([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+";
const BOOL = "true|false";

/**
 * Global restic flags (restic v0.19) that change no program, path, credential, key, cache dir, CA, TLS
 * client certificate or repository location, with their value grammar (`null`: a switch without value).
 */
export const ALLOWED_FLAGS: Readonly<Record<string, string | null>> = {
  "--compression": "auto|off|fastest|better|max",
  "--http-user-agent": "[a-zA-Z0-9._/+-]{1,128}",
  "--insecure-tls": null,
  "--limit-download": INT,
  "--limit-upload": INT,
  "--no-cache": null,
  "--no-extra-verify": null,
  "--no-lock": null,
  "--pack-size": "[0-9]{1,3}",
  "--retry-lock": DURATION,
  "--stuck-request-timeout": DURATION,
};

/**
 * Backend options (`-o key=value`) that tune connections, regions and storage classes. Left out on
 * purpose: `sftp.command`, `sftp.args`, `rclone.program`, `rclone.args` (they run programs) and
 * `s3.unsafe-anonymous-auth`.
 */
export const ALLOWED_OPTIONS: Readonly<Record<string, string>> = {
  "azure.access-tier": "Hot|Cool|Cold",
  "azure.connections": INT,
  "b2.connections": INT,
  "gs.connections": INT,
  "gs.region": "[a-z0-9-]{1,64}",
  "local.connections": INT,
  "rclone.connections": INT,
  "rclone.timeout": DURATION,
  "rest.connections": INT,
  "s3.bucket-lookup": "auto|dns|path",
  "s3.connections": INT,
  "s3.list-objects-v1": BOOL,
  "s3.region": "[a-z0-9-]{1,64}",
  "s3.retries": INT,
  "s3.storage-class": "[A-Z_]{1,64}",
  "sftp.connections": INT,
  "swift.connections": INT,
};

function escape(s: string): string {
  return s.replace(/[.+]/g, "\\$&");
}

/**
 * One regular expression (source) for every accepted spelling of one entry: `--name`, `--name=value`,
 * `--name value`, `-o key=value`, `--option=key=value`, `--option key=value`, and the two-entry form the
 * Go prototype's users wrote (`-o` or `--option` alone, then `key=value`). The CRD's CEL rule carries this
 * exact string (a test compares them), so the apiserver refuses what the reconciler would; the pairing of
 * the two-entry form is checked by the reconciler.
 */
export const EXTRA_FLAG_PATTERN_SOURCE: string = (() => {
  const flags = Object.entries(ALLOWED_FLAGS).map(([name, value]) =>
    value === null ? escape(name) : `${escape(name)}[= ](${value})`
  );
  const options = Object.entries(ALLOWED_OPTIONS).map(([key, value]) => `${escape(key)}=(${value})`);
  return `^(${flags.join("|")}|((-o |--option[= ])?(${options.join("|")}))|-o|--option)$`;
})();

const ENTRY = new RegExp(EXTRA_FLAG_PATTERN_SOURCE);
const OPTION_FLAG = /^(-o|--option)$/;
const OPTION_ENTRY = /^(?:-o |--option[= ])?([a-z0-9]+\.[a-z0-9-]+=.*)$/;

/** An `extraFlags` list as restic will get it, or the first problem (naming the entry). */
export type NormalizedFlags = { ok: true; flags: string[] } | { ok: false; problem: string };

/**
 * Checks every entry against the allowlist and returns them in their canonical spelling, sorted (one
 * token each, so order carries no meaning); refuses unknown flags and repeated flags or `-o` keys.
 */
export function normalizeExtraFlags(entries: readonly string[]): NormalizedFlags {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (!ENTRY.test(entry)) {
      const name = /^-{1,2}[a-zA-Z][a-zA-Z0-9-]*/.exec(entry)?.[0];
      return {
        ok: false,
        problem: `${JSON.stringify(entry.slice(0, 256))} is not an allowed restic flag${
          name && !(name in ALLOWED_FLAGS) && name !== "-o" && name !== "--option"
            ? ` (${name} is not on the list)`
            : " (or its value is not one it takes)"
        }; allowed: ${[...Object.keys(ALLOWED_FLAGS), "-o <key>=<value>"].join(", ")}`,
      };
    }
    let canonical: string;
    let identity: string;
    const option = OPTION_ENTRY.exec(entry)?.[1];
    if (OPTION_FLAG.test(entry)) {
      // The two-entry form: `-o`, then `key=value`.
      const pairedKey = entries[i + 1];
      const next = pairedKey === undefined || !ENTRY.test(pairedKey)
        ? undefined
        : OPTION_ENTRY.exec(pairedKey)?.[1];
      if (next === undefined || pairedKey !== next) {
        return {
          ok: false,
          problem: `${entry} must be followed by an entry key=value (or write -o key=value)`,
        };
      }
      i++;
      canonical = `--option=${next}`;
      identity = `-o ${next.slice(0, next.indexOf("="))}`;
    } else if (option !== undefined) {
      if (option === entry) {
        return { ok: false, problem: `${JSON.stringify(entry)} must follow -o (or write -o ${entry})` };
      }
      canonical = `--option=${option}`;
      identity = `-o ${option.slice(0, option.indexOf("="))}`;
    } else {
      canonical = entry.replace(" ", "=");
      identity = canonical.split("=")[0]!;
    }
    if (seen.has(identity)) return { ok: false, problem: `${identity} is given more than once` };
    seen.add(identity);
    out.push(canonical);
  }
  return { ok: true, flags: out.sort() };
}
