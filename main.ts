/**
 * Entry point: flags -> options -> manager; waits for SIGTERM/SIGINT. The only place that exits.
 */
import { OptionsError, parseOptions, usage } from "./lib/options.ts";
import { VERSION } from "./lib/version.ts";

function fail(message: string): never {
  console.error(`backrest-volsync-operator: ${message}`);
  Deno.exit(2);
}

if (import.meta.main) {
  let options;
  try {
    options = parseOptions(Deno.args);
  } catch (e) {
    if (e instanceof OptionsError) fail(e.message);
    throw e;
  }
  if (options.help) {
    console.log(usage());
    Deno.exit(0);
  }
  if (options.version) {
    console.log(VERSION);
    Deno.exit(0);
  }
  fail("the manager is not wired yet");
}
