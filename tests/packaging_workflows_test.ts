/**
 * The GitHub workflows: actionlint (built from the Go module proxy; it also runs shellcheck on `run:`
 * scripts when shellcheck is on PATH) finds nothing, and each workflow does the job the README promises.
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
import {
  at,
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
    ["ci.yaml", "e2e.yaml", "helm-chart-publish-oci.yaml", "image.yaml", "release.yaml"],
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

Deno.test("workflows: image builds multi-arch on every pull request and pushes to GHCR on main and v* tags", async () => {
  const wf = await workflow("image.yaml");
  assert.deepEqual(at(wf, "on.push.branches"), ["main"]);
  assert.deepEqual(at(wf, "on.push.tags"), ["v*"]);
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

Deno.test("workflows: the chart is published to oci://ghcr.io/<owner>/charts on chart-v* tags", async () => {
  const wf = await workflow("helm-chart-publish-oci.yaml");
  assert.deepEqual(at(wf, "on.push.tags"), ["chart-v*"]);
  assert.equal(at(wf, "on.push.branches"), undefined);
  const script = steps(wf).map((s) => str(s, "run")).join("\n");
  assert.match(script, /helm.+ package charts\/backrest-volsync-operator/i);
  assert.match(script, /push dist\/backrest-volsync-operator-\*\.tgz "oci:\/\/ghcr\.io\/\$owner\/charts"/);
  assert.match(script, /tests\/peers\/build\.sh helm/, "helm at the version the tests pin");
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

Deno.test("workflows: a v* tag publishes the chart and a GitHub release with install.yaml and the CHANGELOG section", async () => {
  const wf = await workflow("release.yaml");
  assert.deepEqual(at(wf, "on.push.tags"), ["v*"]);
  assert.equal(at(wf, "on.push.branches"), undefined);
  assert.equal(str(wf, "jobs.release.permissions.contents"), "write");
  assert.equal(str(wf, "jobs.release.permissions.packages"), "write");
  const run = scripts(wf);
  assert.match(run, /tools\/release\.ts check "\$version"/, "every version agrees with the tag");
  assert.match(run, /tools\/release\.ts notes "\$version" > dist\/notes\.md/);
  assert.match(
    run,
    /tools\/install_yaml\.ts --kubectl="\$KUBECTL" --image="\$IMAGE" manifests > dist\/install\.yaml/,
  );
  assert.match(run, /push dist\/backrest-volsync-operator-\*\.tgz "oci:\/\/ghcr\.io\/\$OWNER\/charts"/);
  assert.match(
    run,
    /gh release create "\$GITHUB_REF_NAME" dist\/install\.yaml .*--notes-file dist\/notes\.md/,
  );
  const image = steps(wf).find((s) => str(s, "name") === "install.yaml");
  assert.equal(
    str(image, "env.IMAGE"),
    "ghcr.io/${{ steps.version.outputs.owner }}/backrest-volsync-operator:${{ steps.version.outputs.version }}",
    "install.yaml pins the image image.yaml pushes for the tag",
  );
});
