/**
 * The Dockerfile cannot be built here (no Docker engine, and `deno compile` needs `denort` from the
 * internet), so these checks pin what can be checked: the same Deno as tools/deno, the compile task as the
 * one definition of the compile flags, a distroless non-root final stage with no shell, and a build
 * context (.dockerignore) that holds every local module main.ts imports.
 */
import assert from "node:assert/strict";
import { imageEnv } from "./harness/operator_process.ts";
import { ok, ROOT, run } from "./packaging_support.ts";

const dockerfile = await Deno.readTextFile(`${ROOT}/Dockerfile`);
/** Instructions with continuation lines joined and comments dropped. */
const instructions = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) =>
  l !== "" && !l.startsWith("#")
);
const froms = instructions.filter((l) => /^FROM\s/i.test(l));

Deno.test("image: the build stage uses the official Deno image at the version tools/deno pins", async () => {
  const shim = await Deno.readTextFile(`${ROOT}/tools/deno`);
  const pinned = /^DENO_VERSION=(\S+)$/m.exec(shim)?.[1];
  assert.ok(pinned, "tools/deno pins DENO_VERSION");
  assert.match(froms[0] ?? "", new RegExp(`\\sdenoland/deno:${pinned.replaceAll(".", "\\.")}\\s+AS build$`));
});

Deno.test("image: the binary is built by the compile task of deno.json (one definition of its flags)", async () => {
  const deno = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const command: unknown = deno?.tasks?.compile?.command;
  assert.equal(typeof command, "string");
  assert.match(
    String(command),
    /^deno compile -P=operator --v8-flags=[^ ]+ --no-code-cache --output dist\/backrest-volsync-operator main\.ts$/,
  );
  assert.ok(instructions.some((l) => l.includes(".tasks.compile.command")), "the Dockerfile reads the task");
  assert.ok(instructions.some((l) => l.includes("deno install --frozen")), "the lock file is enforced");
});

Deno.test("image: the final stage is distroless cc, non-root, exec-form entrypoint, no shell", () => {
  assert.equal(froms.at(-1), "FROM gcr.io/distroless/cc-debian12:nonroot");
  const final = instructions.slice(instructions.lastIndexOf(froms.at(-1)!));
  assert.ok(final.includes("USER 65532:65532"));
  assert.ok(final.includes('ENTRYPOINT ["/backrest-volsync-operator"]'));
  assert.ok(
    !final.some((l) => /^(RUN|SHELL)\s/i.test(l)),
    "nothing runs in the final stage: it has no shell",
  );
  assert.ok(
    final.some((l) =>
      l === "COPY --from=build /src/dist/backrest-volsync-operator /backrest-volsync-operator"
    ),
  );
  // The malloc tuning the memory benchmark measured; operator processes in tests run with it too.
  assert.deepEqual(imageEnv(), {
    MALLOC_ARENA_MAX: "2",
    MALLOC_MMAP_THRESHOLD_: "131072",
    MALLOC_TRIM_THRESHOLD_: "131072",
  });
});

Deno.test("image: .dockerignore lets in every local module main.ts loads, and no tests", async () => {
  const info = JSON.parse(ok("deno info", await run(`${ROOT}/tools/deno`, ["info", "--json", "main.ts"])));
  const local: string[] = (info.modules as { specifier: string }[])
    .map((m) => m.specifier)
    .filter((s) => s.startsWith("file://"))
    .map((s) => new URL(s).pathname.slice(ROOT.length + 1));
  assert.ok(local.includes("main.ts"));
  const ignore = (await Deno.readTextFile(`${ROOT}/.dockerignore`)).split("\n").map((l) => l.trim()).filter((
    l,
  ) => l !== "" && !l.startsWith("#"));
  // Docker's rules: a pattern matches a path or any of its parent directories, the last matching pattern
  // wins, and `!` lets a path back in.
  const included = (path: string) => {
    let inside = true;
    for (const pattern of ignore) {
      const negate = pattern.startsWith("!");
      const p = (negate ? pattern.slice(1) : pattern).replace(/\/+$/, "");
      const re = new RegExp(
        "^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "(.*/)?").replace(/\*/g, "[^/]*") +
          "(/.*)?$",
      );
      if (re.test(path)) inside = negate;
    }
    return inside;
  };
  for (const path of [...local, "deno.json", "deno.lock"]) {
    assert.ok(included(path), `${path} is in the build context`);
  }
  for (
    const path of [
      "tests/smoke_control_plane_test.ts",
      "charts/backrest-volsync-operator/Chart.yaml",
      ".git/HEAD",
    ]
  ) {
    assert.ok(!included(path), `${path} stays out of the build context`);
  }
  for (const line of ["COPY deno.json deno.lock ./", "COPY main.ts ./", "COPY lib/ lib/", "COPY gen/ gen/"]) {
    assert.ok(instructions.includes(line), line);
  }
  const copied = ["main.ts", "lib/", "gen/"];
  for (const path of local) {
    assert.ok(copied.some((c) => path === c || path.startsWith(c)), `${path} is copied`);
  }
});

Deno.test("image: what main.ts loads at start imports no Node built-in module (node:crypto and friends)", async () => {
  // Importing any `node:` module starts Deno's Node compatibility layer: about 70 ms of CPU and 10 MB of
  // resident memory at every start, for nothing the operator needs. Only a dynamic import (the kubeconfig
  // path's @kubernetes/client-node) or a type-only one may reach one.
  const info = JSON.parse(ok("deno info", await run(`${ROOT}/tools/deno`, ["info", "--json", "main.ts"])));
  type Dep = { specifier: string; code?: { specifier: string }; isDynamic?: boolean };
  const modules = new Map<string, Dep[]>(
    (info.modules as { specifier: string; dependencies?: Dep[] }[]).map((
      m,
    ) => [m.specifier, m.dependencies ?? []]),
  );
  const loaded = new Set<string>();
  const nodeImports: string[] = [];
  const visit = (specifier: string) => {
    if (loaded.has(specifier)) return;
    loaded.add(specifier);
    for (const dep of modules.get(specifier) ?? []) {
      const target = dep.code?.specifier;
      if (!target || dep.isDynamic) continue;
      if (target.startsWith("node:")) {
        nodeImports.push(`${specifier.slice(ROOT.length + 8)} imports ${target}`);
      } else visit(target);
    }
  };
  visit(`file://${ROOT}/main.ts`);
  assert.ok(loaded.size > 50, `the walk found the operator's modules (${loaded.size})`);
  assert.deepEqual(nodeImports, []);
});
