import assert from "node:assert/strict";
import { OptionsError, parseOptions, usage } from "./options.ts";

Deno.test("parseOptions() gives the prototype's defaults with no flags", () => {
  const o = parseOptions([]);
  assert.equal(o.metricsBindAddress, ":8080");
  assert.equal(o.healthProbeBindAddress, ":8081");
  assert.equal(o.leaderElect, true);
  assert.equal(o.leaderElectionId, "backrest-volsync-operator.backrest.garethgeorge.com");
  assert.equal(o.operatorConfigName, "backrest-volsync-operator");
  assert.equal(o.operatorConfigNamespace, undefined);
  assert.deepEqual(o.namespaces, []);
  assert.equal(o.logFormat, "json");
  assert.equal(o.logLevel, "info");
  assert.equal(o.concurrency, 4);
});

Deno.test("parseOptions() takes both value spellings, bare booleans and namespace lists", () => {
  const o = parseOptions([
    "--kubeconfig",
    "/tmp/kc",
    "--context=dev",
    "--namespace=a,b",
    "--namespace",
    "c",
    "--leader-elect=false",
    "--log-format=console",
    "--log-level",
    "debug",
    "--metrics-bind-address=0",
    "--health-probe-bind-address=127.0.0.1:9000",
    "--help",
  ]);
  assert.equal(o.kubeconfig, "/tmp/kc");
  assert.equal(o.context, "dev");
  assert.deepEqual(o.namespaces, ["a", "b", "c"]);
  assert.equal(o.leaderElect, false);
  assert.equal(o.logFormat, "console");
  assert.equal(o.logLevel, "debug");
  assert.equal(o.metricsBindAddress, "0");
  assert.equal(o.healthProbeBindAddress, "127.0.0.1:9000");
  assert.equal(o.help, true);
});

Deno.test("parseOptions() refuses unknown flags and bad values with one-line reasons", () => {
  const cases: [string[], RegExp][] = [
    [["--nope"], /unknown flag --nope/],
    [["positional"], /unexpected argument/],
    [["--kubeconfig"], /--kubeconfig needs a value/],
    [["--log-level=trace"], /--log-level: want one of debug, info, error/],
    [["--leader-elect=maybe"], /--leader-elect: want true or false/],
    [["--metrics-bind-address=8080"], /--metrics-bind-address: want host:port/],
    [["--metrics-bind-address=:70000"], /--metrics-bind-address/],
    [["--namespace=Bad_NS"], /--namespace: "Bad_NS" is not a valid Kubernetes name/],
    [["--concurrency=0"], /--concurrency: want a whole number from 1 to 64/],
    [["--concurrency=2x"], /--concurrency/],
    [["--context=a", "--context=b"], /--context given twice/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseOptions(args), (e: unknown) => {
      assert.ok(e instanceof OptionsError, String(e));
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    }, args.join(" "));
  }
});

Deno.test("usage() lists every flag the operator takes", () => {
  const text = usage();
  for (
    const flag of [
      "--kubeconfig",
      "--context",
      "--namespace",
      "--operator-config-name",
      "--operator-config-namespace",
      "--metrics-bind-address",
      "--health-probe-bind-address",
      "--leader-elect",
      "--log-format",
      "--log-level",
    ]
  ) assert.ok(text.includes(flag), flag);
});
