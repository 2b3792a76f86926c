/**
 * The GitHub workflows: actionlint (built from the Go module proxy; it also runs shellcheck on `run:`
 * scripts when shellcheck is on PATH) finds nothing, and each workflow does the job the README promises.
 * The release is one pipeline whose stages wait for the tests, and every step that runs a script of this
 * repository is run here by the workflow's own command line (tests/harness/workflow.ts), in a copy of the
 * repository bumped to a test version, so a step that cannot work fails here first.
 * The e2e workflow cannot run here (no Docker engine, no kind): its steps are held to the README's install
 * commands and sample, its cluster manifests (.github/e2e/) are created on the real apiserver, and its
 * final check runs on the real Backrest's answer.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { createResticRepo } from "./harness/backrest.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { freePort, spawn, tempDir, waitUntil } from "./harness/process.ts";
import { jobSteps, runJob, runsOurScript } from "./harness/workflow.ts";
import {
  at,
  helm,
  isObj,
  list,
  type Obj,
  ok,
  one,
  parseObjects,
  ROOT,
  run,
  serverApplyAll,
  str,
} from "./packaging_support.ts";

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
    ["ci.yaml", "e2e.yaml", "image.yaml", "release.yaml", "scan.yaml"],
  );
  ok("actionlint", await run(actionlint, ["-color=false", ...files]));
});

Deno.test("workflows: ci runs .ci/run on every push and pull request, and for the release", async () => {
  const wf = await workflow("ci.yaml");
  assert.ok(isObj(at(wf, "on.push")));
  assert.deepEqual(at(wf, "on.push.tags-ignore"), ["**"], "a tag runs it through release.yaml only");
  assert.ok("pull_request" in (isObj(wf.on) ? wf.on : {}));
  assert.ok("workflow_call" in (isObj(wf.on) ? wf.on : {}));
  assert.ok(steps(wf).some((s) => str(s, "run").trim() === "bash .ci/run"));
  uses(wf, "actions/setup-node");
  uses(wf, "actions/setup-go");
});

Deno.test("workflows: image builds multi-arch on every pull request and pushes main to GHCR; no tag builds it", async () => {
  const wf = await workflow("image.yaml");
  assert.deepEqual(at(wf, "on.push.branches"), ["main"]);
  assert.equal(at(wf, "on.push.tags"), undefined, "release images come from release.yaml, after the tests");
  assert.ok(isObj(wf.on) && "pull_request" in wf.on, "pull requests");
  assert.equal(at(wf, "on.pull_request"), null, "every pull request: no paths or branches filter");
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

Deno.test("workflows: the image is scanned for known vulnerabilities on every pull request and weekly", async () => {
  const wf = await workflow("scan.yaml");
  assert.equal(at(wf, "on.pull_request"), null, "every pull request");
  const cron = list(wf, "on.schedule").map((s) => str(s, "cron"));
  assert.equal(cron.length, 1);
  assert.match(cron[0]!, /^\d+ \d+ \* \* [0-6]$/, "once a week");
  const build = uses(wf, "docker/build-push-action");
  assert.equal(str(build, "with.context"), ".");
  assert.equal(at(build, "with.load"), true);
  const scan = uses(wf, "anchore/scan-action");
  assert.equal(str(scan, "with.image"), str(build, "with.tags"), "the image just built");
  assert.equal(at(scan, "with.fail-build"), true);
  assert.equal(str(scan, "with.severity-cutoff"), "high");
});

/** Every step's `run:` script of a workflow, with line continuations joined and blanks folded. */
function scripts(wf: Obj): string {
  return steps(wf).map((s) => fold(str(s, "run"))).join("\n");
}

function fold(text: string): string {
  return text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim().replace(/\s+/g, " ")).join("\n");
}

/** The commands of the README's ```sh blocks under a `###` heading, continuations joined, comments cut. */
async function readmeCommands(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const start = readme.indexOf(`\n### ${heading}\n`);
  assert.ok(start >= 0, `README has a section ${heading}`);
  const end = readme.slice(start + 1).search(/\n##+ /);
  const section = readme.slice(start, end < 0 ? undefined : start + 1 + end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
    fold(m[1] ?? "").split("\n").map((l) => l.replace(/\s+#.*$/, "")).filter((l) => l !== "")
  );
}

/** The e2e cluster's objects with the versions tests/peers/build.sh pins, as the workflow fills them in. */
async function e2eObjects(): Promise<Obj[]> {
  const build = await Deno.readTextFile(`${ROOT}/tests/peers/build.sh`);
  const backrest = /^BACKREST_VERSION=(\S+)$/m.exec(build)?.[1];
  const restServer = /^REST_SERVER_VERSION=v(\S+)$/m.exec(build)?.[1];
  assert.ok(backrest && restServer);
  const objects: Obj[] = [];
  for (const entry of [...Deno.readDirSync(`${ROOT}/.github/e2e`)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const text = (await Deno.readTextFile(`${ROOT}/.github/e2e/${entry.name}`))
      .replaceAll("@BACKREST_VERSION@", backrest).replaceAll("@REST_SERVER_VERSION@", restServer);
    assert.doesNotMatch(text, /@[A-Z_]+@/, `${entry.name}: every placeholder is one the workflow fills`);
    objects.push(...parseObjects(text));
  }
  return objects;
}

Deno.test("workflows: e2e runs on every pull request and on main, with the image built from the Dockerfile", async () => {
  const wf = await workflow("e2e.yaml");
  assert.deepEqual(at(wf, "on.push.branches"), ["main"]);
  assert.equal(at(wf, "on.pull_request"), null, "every pull request");
  const build = uses(wf, "docker/build-push-action");
  assert.equal(str(build, "with.context"), ".");
  assert.equal(at(build, "with.file"), undefined, "the repository's Dockerfile");
  assert.equal(at(build, "with.load"), true);
  assert.equal(str(build, "with.tags"), "${{ env.IMAGE_REPOSITORY }}:${{ env.IMAGE_TAG }}");
  uses(wf, "helm/kind-action");
  const run = scripts(wf);
  assert.match(run, /kind load docker-image "\$IMAGE_REPOSITORY:\$IMAGE_TAG"/);
  assert.match(
    run,
    /bash tests\/peers\/build\.sh helm kubectl volsync/,
    "pinned helm, kubectl, VolSync CRDs",
  );
  assert.match(run, /kubectl apply -f "\$VOLSYNC_CRDS"/);
});

Deno.test("workflows: e2e installs with the README's Helm command and applies and checks the README's sample", async () => {
  const wf = await workflow("e2e.yaml");
  const run = scripts(wf);
  const helmCommands = (await readmeCommands("Helm, from a checkout")).map((c) =>
    c.replace("ghcr.io/<owner>/backrest-volsync-operator", '"$IMAGE_REPOSITORY"').replace(
      "<version>",
      '"$IMAGE_TAG"',
    )
  );
  assert.equal(helmCommands.length, 1);
  assert.ok(run.includes(helmCommands[0]!), `e2e runs ${helmCommands[0]}`);
  const samples = (await readmeCommands("kustomize, from a checkout")).filter((c) => c.includes("samples/"));
  assert.deepEqual(samples, [
    "kubectl apply -f manifests/samples/operatorconfig.yaml",
    "kubectl apply -f manifests/samples/binding.yaml",
  ]);
  for (const c of samples) assert.ok(run.includes(c), `e2e runs ${c}`);
  assert.ok(run.indexOf(helmCommands[0]!) < run.indexOf(samples[0]!), "the operator first, then the sample");

  // What green means: the sample Binding Ready and its repo id in Backrest.
  const binding = one(
    parseObjects(await Deno.readTextFile(`${ROOT}/manifests/samples/binding.yaml`)),
    "BackrestVolSyncBinding",
  );
  const ns = str(binding, "metadata.namespace");
  assert.ok(
    run.includes(
      `kubectl -n ${ns} wait backrestvolsyncbinding/${
        str(binding, "metadata.name")
      } --for=condition=Ready=True`,
    ),
  );
  assert.ok(
    run.includes(`index("${str(binding, "spec.repo.idOverride")}")`),
    "Backrest is asked for the sample's repo id",
  );

  // The cluster has what the sample names: Backrest at its URL, its ReplicationSource and repository.
  const objects = await e2eObjects();
  const config = one(
    parseObjects(await Deno.readTextFile(`${ROOT}/manifests/samples/operatorconfig.yaml`)),
    "BackrestVolSyncOperatorConfig",
  );
  for (const url of [str(binding, "spec.backrest.url"), str(config, "spec.defaultBackrest.url")]) {
    const u = new URL(url);
    const [svc, svcNs] = u.hostname.split(".");
    const service = one(objects, "Service", svc);
    assert.equal(str(service, "metadata.namespace"), svcNs, url);
    assert.equal(at(service, "spec.ports.0.port"), Number(u.port), url);
  }
  const source = one(objects, "ReplicationSource", str(binding, "spec.source.name"));
  assert.equal(str(source, "metadata.namespace"), ns);
  const secret = one(objects, "Secret", str(source, "spec.restic.repository"));
  assert.match(
    str(secret, "stringData.RESTIC_REPOSITORY"),
    /^rest:http:\/\/rest-server\.backups\.svc:8000\//,
  );
  const init = one(objects, "Job", "restic-init");
  assert.equal(
    str(init, "spec.template.spec.containers.0.envFrom.0.secretRef.name"),
    str(secret, "metadata.name"),
  );
});

Deno.test("workflows: the e2e cluster's objects are accepted by the real apiserver", async () => {
  const cp = await controlPlane();
  const objects = await e2eObjects();
  assert.ok(objects.every((o) => str(o, "metadata.namespace") === "backups"));
  await cp.json("POST", "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "backups" },
  });
  try {
    await serverApplyAll(cp, objects, { dryRun: false });
  } finally {
    await cp.json("DELETE", "/api/v1/namespaces/backups");
  }
});

Deno.test("workflows: the e2e's Backrest seed runs the real Backrest, and the final check finds the repo only once it is there", async () => {
  const wf = await workflow("e2e.yaml");
  const filter = /jq -e '([^']+)'/.exec(scripts(wf))?.[1];
  assert.ok(filter, "the check is a jq filter");
  const data = at(one(await e2eObjects(), "ConfigMap", "backrest-seed"), "data");
  const seed = isObj(data) ? data["config.json"] : undefined;
  assert.equal(typeof seed, "string");
  const dir = await tempDir("e2e-backrest");
  await Deno.writeTextFile(`${dir}/config.json`, String(seed));
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = await spawn("backrest-e2e-seed", (await peer("backrest")).path, {
    args: [
      "-config-file",
      `${dir}/config.json`,
      "-data-dir",
      `${dir}/data`,
      "-bind-address",
      `127.0.0.1:${port}`,
    ],
    env: { BACKREST_RESTIC_COMMAND: (await peer("restic")).path, XDG_CACHE_HOME: `${dir}/cache` },
    logDir: dir,
  });
  try {
    await waitUntil("backrest serves GET /", async () => {
      const res = await fetch(`${url}/`);
      await res.body?.cancel();
      return res.ok;
    }, { proc, timeoutMs: 30_000 });
    const check = async () => {
      const res = await fetch(`${url}/v1.Backrest/GetSummaryDashboard`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      const answer = await res.text();
      assert.equal(res.status, 200, answer);
      const jq = new Deno.Command("jq", {
        args: ["-e", filter],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      })
        .spawn();
      const writer = jq.stdin.getWriter();
      await writer.write(new TextEncoder().encode(answer));
      await writer.close();
      return (await jq.output()).code;
    };
    assert.notEqual(await check(), 0, "no repo yet: the check fails");
    const repo = await createResticRepo();
    const add = await fetch(`${url}/v1.Backrest/AddRepo`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo: { id: "my-app-data", uri: repo.uri, password: repo.password } }),
    });
    assert.equal(add.status, 200, await add.text());
    assert.equal(await check(), 0, "the repo is there: the check passes");
  } finally {
    await proc.stop();
  }
});

/** Every workflow file, parsed, by file name. */
async function allWorkflows(): Promise<Map<string, Obj>> {
  const out = new Map<string, Obj>();
  for (const e of [...Deno.readDirSync(DIR)].filter((e) => /\.ya?ml$/.test(e.name))) {
    out.set(e.name, await workflow(e.name));
  }
  return out;
}

function needs(wf: Obj, job: string): string[] {
  const n = at(wf, `jobs.${job}.needs`);
  return typeof n === "string" ? [n] : Array.isArray(n) ? n.map(String) : [];
}

Deno.test("workflows: one release pipeline on v* tags, each stage behind the one before, the tests first", async () => {
  const all = await allWorkflows();
  const onTags = [...all].filter(([, wf]) => list(wf, "on.push.tags").length > 0).map(([name]) => name);
  assert.deepEqual(onTags, ["release.yaml"], "no other workflow starts on a tag");
  const wf = all.get("release.yaml")!;
  assert.deepEqual(at(wf, "on.push.tags"), ["v*"]);
  assert.equal(at(wf, "on.push.branches"), undefined);
  const jobs = at(wf, "jobs");
  assert.ok(isObj(jobs));
  assert.deepEqual(Object.keys(jobs), ["check", "test", "e2e", "image", "chart", "release"]);
  assert.equal(str(wf, "jobs.test.uses"), "./.github/workflows/ci.yaml");
  assert.equal(str(wf, "jobs.e2e.uses"), "./.github/workflows/e2e.yaml");
  for (const called of ["ci.yaml", "e2e.yaml"]) {
    const on = at(all.get(called), "on");
    assert.ok(isObj(on) && "workflow_call" in on, `${called} can be called by the release`);
  }
  assert.deepEqual(needs(wf, "test"), ["check"]);
  assert.deepEqual(needs(wf, "e2e"), ["check"]);
  assert.deepEqual(needs(wf, "image").sort(), ["check", "e2e", "test"]);
  assert.deepEqual(needs(wf, "chart").sort(), ["check", "image"]);
  assert.deepEqual(needs(wf, "release").sort(), ["chart", "check", "image"]);
  for (const job of Object.keys(jobs)) {
    assert.equal(at(wf, `jobs.${job}.if`), undefined, `${job} runs only when what it needs succeeded`);
    assert.equal(at(wf, `jobs.${job}.continue-on-error`), undefined, job);
  }
});

Deno.test("workflows: the release image is multi-arch with an SBOM and provenance, signed keyless by digest", async () => {
  const wf = await workflow("release.yaml");
  const image = { ...wf, jobs: { image: at(wf, "jobs.image") } };
  assert.equal(str(wf, "jobs.image.permissions.id-token"), "write");
  const build = uses(image, "docker/build-push-action");
  assert.deepEqual(str(build, "with.platforms").split(","), ["linux/amd64", "linux/arm64"]);
  assert.equal(at(build, "with.push"), true);
  assert.equal(at(build, "with.sbom"), true);
  assert.equal(str(build, "with.provenance"), "mode=max");
  assert.equal(str(wf, "jobs.image.outputs.digest"), "${{ steps.build.outputs.digest }}");
  uses(image, "sigstore/cosign-installer");
  const sign = steps(image).find((s) => str(s, "name") === "Sign the image");
  assert.equal(str(sign, "run"), 'cosign sign --yes "$IMAGE@$DIGEST"');
  assert.equal(str(sign, "env.DIGEST"), "${{ steps.build.outputs.digest }}");
});

Deno.test("workflows: one path publishes the chart: the release's chart job, signed, never over a published version", async () => {
  const all = await allWorkflows();
  const pushes: string[] = [];
  for (const [name, wf] of all) {
    for (const s of steps(wf)) {
      if (/\bpush\b[^\n]*oci:\/\//.test(str(s, "run"))) pushes.push(`${name}: ${str(s, "name")}`);
    }
  }
  assert.deepEqual(pushes, ["release.yaml: Push and sign the chart"]);
  const wf = all.get("release.yaml")!;
  const chart = { ...wf, jobs: { chart: at(wf, "jobs.chart") } };
  const push = steps(chart).find((s) => str(s, "name") === "Push and sign the chart");
  assert.equal(str(push, "if"), "steps.published.outputs.exists == 'false'");
  assert.match(
    str(push, "run"),
    /cosign sign --yes "ghcr\.io\/\$OWNER\/charts\/backrest-volsync-operator@\$digest"/,
  );
  assert.equal(str(wf, "jobs.chart.permissions.id-token"), "write");
  const published = steps(chart).find((s) => str(s, "id") === "published");
  assert.match(
    str(published, "run"),
    /show chart "oci:\/\/ghcr\.io\/\$OWNER\/charts\/backrest-volsync-operator"/,
  );
});

/** What the runner of a release job needs from this machine: tools, caches, nothing else. */
function machineEnv(): Record<string, string> {
  const keep = [
    "PATH",
    "HOME",
    "XDG_CACHE_HOME",
    "BVO_CACHE_DIR",
    "DENO_DIR",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
  ];
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of keep) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  env.PATH = `${env.PATH ?? "/usr/bin:/bin"}:/usr/local/go/bin`;
  return env;
}

/** The repository's files (tracked and new, not ignored) copied into a temp dir. */
async function copyRepo(): Promise<string> {
  const dir = await tempDir("repo-copy");
  const files = ok(
    "git ls-files",
    await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]),
  ).split("\0").filter((f) => f !== "");
  for (const f of files) {
    try {
      await Deno.stat(`${ROOT}/${f}`);
    } catch {
      continue; // deleted in the working tree
    }
    await Deno.mkdir(`${dir}/${f}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.copyFile(`${ROOT}/${f}`, `${dir}/${f}`);
  }
  await Deno.chmod(`${dir}/tools/deno`, 0o755);
  return dir;
}

/** A step whose script runs a program of this repository that no test here can run, and why. */
const NOT_RUN: Record<string, string> = {
  "ci.yaml/test/Tests":
    "`bash .ci/run` is this very test suite (every test file, this one included); CI running it is its test",
};

/** Steps left out because they need what this machine lacks (a registry, a cluster, GitHub): why. */
const NEEDS_OUTSIDE: Record<string, string> = {
  "e2e.yaml/kind/Load the image into kind": "a kind cluster and a Docker engine",
  "e2e.yaml/kind/VolSync's CRDs, Backrest, a REST server and the VolSync source of the sample":
    "the kind cluster",
  "e2e.yaml/kind/Install the operator (README, Helm)": "the kind cluster",
  "e2e.yaml/kind/The README's sample": "the kind cluster",
  "e2e.yaml/kind/The sample Binding is Ready and Backrest holds its repo": "the kind cluster",
  "e2e.yaml/kind/What the cluster shows": "the kind cluster (and runs only on failure)",
  "release.yaml/chart/Log in to GHCR": "the registry",
  "release.yaml/chart/Is this chart version published": "the registry",
  "release.yaml/chart/Push and sign the chart": "the registry and Sigstore",
  "release.yaml/release/GitHub release": "GitHub",
};

const DIGEST = `sha256:${"ab".repeat(32)}`;

Deno.test("workflows: every step that runs a script of this repository runs here, with its own command line", async (t) => {
  const all = await allWorkflows();
  // Which jobs hold such steps, and which of those steps can never run here.
  const jobsToRun: string[] = [];
  for (const [name, wf] of all) {
    for (const job of Object.keys(isObj(wf.jobs) ? wf.jobs : {})) {
      const ours = jobSteps(wf, job).filter((s) => s.run !== undefined && runsOurScript(s.run));
      if (ours.length > 0) jobsToRun.push(`${name}/${job}`);
    }
  }
  assert.deepEqual(jobsToRun.sort(), [
    "ci.yaml/test",
    "e2e.yaml/kind",
    "release.yaml/chart",
    "release.yaml/check",
    "release.yaml/release",
  ]);
  for (const [key, why] of Object.entries(NEEDS_OUTSIDE)) {
    const [file, job, name] = key.split("/", 3) as [string, string, string];
    const step = jobSteps(all.get(file)!, job).find((s) =>
      s.name === key.slice(file.length + job.length + 2)
    );
    assert.ok(step, `${key} exists`);
    assert.ok(!step.run || !runsOurScript(step.run), `${key} is left out (${why}) but runs a script of ours`);
    assert.ok(name);
  }

  // The release as the maintainer makes it (CONTRIBUTING.md): the bump, then the tag's jobs in order.
  const repo = await copyRepo();
  ok(
    "release.ts bump",
    await run(`${repo}/tools/deno`, ["run", "-A", `${repo}/tools/release.ts`, "bump", "1.2.3"]),
  );
  const github = {
    ref: "refs/tags/v1.2.3",
    refName: "v1.2.3",
    repositoryOwner: "Example-Owner",
    repository: "Example-Owner/backrest-volsync-operator",
    actor: "release-bot",
    eventName: "push",
    sha: "0".repeat(40),
  };
  const ran = new Set<string>();
  const runIt = async (file: string, job: string, needs: Record<string, Record<string, string>> = {}) => {
    const skip: Record<string, { why: string; outputs?: Record<string, string> }> = {};
    for (const [key, why] of [...Object.entries(NEEDS_OUTSIDE), ...Object.entries(NOT_RUN)]) {
      if (key.startsWith(`${file}/${job}/`)) skip[key.slice(file.length + job.length + 2)] = { why };
    }
    const result = await runJob(all.get(file)!, job, {
      cwd: repo,
      github,
      needs,
      skip,
      baseEnv: machineEnv(),
    });
    for (const name of result.ran) ran.add(`${file}/${job}/${name}`);
    return result;
  };

  let check: Record<string, string> = {};
  await t.step("release check: the versions agree with the tag and the notes exist", async () => {
    check = (await runIt("release.yaml", "check")).outputs;
    assert.deepEqual(check, { version: "1.2.3", owner: "example-owner" });
  });

  await t.step("release check: a tag that is not the version stops the release there", async () => {
    await assert.rejects(
      runJob(all.get("release.yaml")!, "check", {
        cwd: repo,
        github: { ...github, ref: "refs/tags/v1.2.4", refName: "v1.2.4" },
        baseEnv: machineEnv(),
      }),
      /says 1\.2\.3, not 1\.2\.4/,
    );
  });

  await t.step(
    "release chart: helm at the pinned version packages the chart with the owner's image",
    async () => {
      await runIt("release.yaml", "chart", { check });
      const tgz = `${repo}/dist/backrest-volsync-operator-1.2.3.tgz`;
      const values = ok("tar", await run("tar", ["-xzOf", tgz, "backrest-volsync-operator/values.yaml"]));
      assert.match(values, /^ {2}repository: ghcr\.io\/example-owner\/backrest-volsync-operator$/m);
      const chart = ok("tar", await run("tar", ["-xzOf", tgz, "backrest-volsync-operator/Chart.yaml"]));
      assert.match(chart, /^version: 1\.2\.3$/m);
      assert.match(chart, /^appVersion: "?1\.2\.3"?$/m);
      assert.match(chart, /^ {6}image: ghcr\.io\/example-owner\/backrest-volsync-operator:1\.2\.3$/m);
      // The packaged chart replaces the Go prototype's image by the owner's, at the release's version.
      const dir = await tempDir("packaged-chart");
      ok("tar", await run("tar", ["-xzf", tgz, "-C", dir]));
      const rendered = parseObjects(
        ok(
          "helm template",
          await helm([
            "template",
            "bvo",
            `${dir}/backrest-volsync-operator`,
            "-f",
            `${ROOT}/tests/fixtures/prototype_chart_values.yaml`,
          ]),
        ),
      );
      assert.equal(
        str(one(rendered, "Deployment"), "spec.template.spec.containers.0.image"),
        "ghcr.io/example-owner/backrest-volsync-operator:1.2.3",
      );
    },
  );

  await t.step(
    "release: install.yaml pins the image by tag and the digest the image job signed",
    async () => {
      await runIt("release.yaml", "release", { check, image: { digest: DIGEST } });
      const objects = parseObjects(await Deno.readTextFile(`${repo}/dist/install.yaml`));
      assert.equal(
        str(one(objects, "Deployment"), "spec.template.spec.containers.0.image"),
        `ghcr.io/example-owner/backrest-volsync-operator:1.2.3@${DIGEST}`,
      );
      const notes = await Deno.readTextFile(`${repo}/dist/notes.md`);
      assert.match(notes, /^The first release of the TypeScript operator/);
    },
  );

  await t.step("e2e: the pinned helm, kubectl and VolSync CRDs", async () => {
    await runIt("e2e.yaml", "kind");
  });

  await t.step("every step that runs a script of ours ran, except those that cannot here", () => {
    for (const [name, wf] of all) {
      for (const job of Object.keys(isObj(wf.jobs) ? wf.jobs : {})) {
        for (const s of jobSteps(wf, job)) {
          if (s.run === undefined || !runsOurScript(s.run)) continue;
          const key = `${name}/${job}/${s.name}`;
          assert.ok(ran.has(key) || key in NOT_RUN, `${key} was not run`);
        }
      }
    }
  });
});

Deno.test("workflows: the step runner tells our scripts from arguments that only name them", () => {
  assert.ok(runsOurScript("tools/deno run --allow-read tools/release.ts check 1"));
  assert.ok(runsOurScript('echo "path=$(bash tests/peers/build.sh helm | cut -d" " -f3)"'));
  assert.ok(runsOurScript("bash .ci/run"));
  assert.ok(runsOurScript("a && ./tools/deno task ok"));
  assert.ok(!runsOurScript("backrest=$(sed -n 's/^BACKREST_VERSION=//p' tests/peers/build.sh)"));
  assert.ok(!runsOurScript("helm package charts/backrest-volsync-operator --destination dist/"));
});
