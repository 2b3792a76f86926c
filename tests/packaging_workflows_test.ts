/**
 * The GitHub workflows: actionlint (built from the Go module proxy; it also runs shellcheck on `run:`
 * scripts when shellcheck is on PATH) finds nothing, and each workflow does the job the README promises.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { peer } from "./harness/peers.ts";
import { at, isObj, list, type Obj, ok, ROOT, run, str } from "./packaging_support.ts";

const DIR = `${ROOT}/.github/workflows`;

async function workflow(name: string): Promise<Obj> {
  const doc: unknown = parse(await Deno.readTextFile(`${DIR}/${name}`));
  assert.ok(isObj(doc), `${name} is a YAML mapping`);
  return doc;
}

/** Every step of every job. */
function steps(wf: Obj): Obj[] {
  const jobs = at(wf, "jobs");
  assert.ok(isObj(jobs));
  return Object.values(jobs).flatMap((job) => list(job, "steps").filter(isObj));
}

function uses(wf: Obj, action: string): Obj {
  const step = steps(wf).find((s) => str(s, "uses").startsWith(`${action}@`));
  assert.ok(step, `a step uses ${action}`);
  return step;
}

Deno.test("workflows: actionlint finds nothing", async () => {
  const actionlint = (await peer("actionlint")).path;
  const files = [...Deno.readDirSync(DIR)].filter((e) => /\.ya?ml$/.test(e.name)).map((e) =>
    `${DIR}/${e.name}`
  );
  assert.deepEqual(
    files.map((f) => f.slice(DIR.length + 1)).sort(),
    ["ci.yaml", "helm-chart-publish-oci.yaml", "image.yaml"],
  );
  ok("actionlint", await run(actionlint, ["-color=false", ...files]));
});

Deno.test("workflows: ci runs .ci/run on every push and pull request", async () => {
  const wf = await workflow("ci.yaml");
  assert.ok(isObj(at(wf, "on.push")));
  assert.ok("pull_request" in (isObj(wf.on) ? wf.on : {}));
  assert.ok(steps(wf).some((s) => str(s, "run").trim() === "bash .ci/run"));
  uses(wf, "actions/setup-node");
  uses(wf, "actions/setup-go");
});

Deno.test("workflows: image builds multi-arch and pushes to GHCR on main and v* tags", async () => {
  const wf = await workflow("image.yaml");
  assert.deepEqual(at(wf, "on.push.branches"), ["main"]);
  assert.deepEqual(at(wf, "on.push.tags"), ["v*"]);
  assert.equal(str(wf, "jobs.image.permissions.packages"), "write");
  const build = uses(wf, "docker/build-push-action");
  assert.deepEqual(str(build, "with.platforms").split(","), ["linux/amd64", "linux/arm64"]);
  assert.match(str(build, "with.push"), /github\.event_name != 'pull_request'/);
  const login = uses(wf, "docker/login-action");
  assert.equal(str(login, "with.registry"), "ghcr.io");
  assert.ok(
    steps(wf).some((s) =>
      str(s, "run").includes("ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/backrest-volsync-operator")
    ),
  );
});

Deno.test("workflows: the chart is published to oci://ghcr.io/<owner>/charts on chart-v* tags", async () => {
  const wf = await workflow("helm-chart-publish-oci.yaml");
  assert.deepEqual(at(wf, "on.push.tags"), ["chart-v*"]);
  assert.equal(at(wf, "on.push.branches"), undefined);
  const script = steps(wf).map((s) => str(s, "run")).join("\n");
  assert.match(script, /helm.+ package charts\/backrest-volsync-operator/i);
  assert.match(script, /push dist\/backrest-volsync-operator-\*\.tgz "oci:\/\/ghcr\.io\/\$owner\/charts"/);
  assert.match(script, /tests\/peers\/build\.sh helm/, "helm at the version the tests pin");
});
