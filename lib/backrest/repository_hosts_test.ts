import assert from "node:assert/strict";
import { hostKind, hostProblem, repositoryHosts } from "./repository_hosts.ts";

Deno.test("hostKind() finds loopback, link-local, unspecified and metadata addresses in every spelling", () => {
  const cases: [string, string | undefined][] = [
    ["127.0.0.1", "loopback"],
    ["127.8.9.10", "loopback"],
    ["127.0.0.1.", "loopback"],
    ["LOCALHOST", "loopback"],
    ["localhost.", "loopback"],
    ["backrest.localhost", "loopback"],
    ["[::1]", "loopback"],
    ["[0:0:0:0:0:0:0:1]", "loopback"],
    ["[::ffff:127.0.0.1]", "loopback"],
    ["[::ffff:7f00:1]", "loopback"],
    ["[::127.0.0.1]", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["[::]", "unspecified"],
    ["169.254.1.1", "link-local"],
    ["[fe80::1%25eth0]", "link-local"],
    ["[FE80::1]", "link-local"],
    ["169.254.169.254", "metadata"],
    ["[::ffff:169.254.169.254]", "metadata"],
    ["[::ffff:a9fe:a9fe]", "metadata"],
    ["[64:ff9b::169.254.169.254]", "metadata"],
    ["[2002:a9fe:a9fe::1]", "metadata"],
    ["[fd00:ec2::254]", "metadata"],
    ["metadata.google.internal", "metadata"],
    ["Metadata.Google.Internal.", "metadata"],
    ["168.63.129.16", "metadata"],
    ["100.100.100.200", "metadata"],
    // What a C resolver reads as an address and Go's does not: refused whatever it decodes to.
    ["2130706433", "ambiguous"],
    ["0x7f000001", "ambiguous"],
    ["0x7f.1", "ambiguous"],
    ["0177.0.0.1", "ambiguous"],
    ["127.1", "ambiguous"],
    ["127.000.000.001", "ambiguous"],
    ["2852039166", "ambiguous"],
    ["[::ffff:0x7f.1]", "ambiguous"],
    // Storage.
    ["10.0.0.5", undefined],
    ["192.168.1.10", undefined],
    ["s3.amazonaws.com", undefined],
    ["minio.storage.svc.cluster.local", undefined],
    ["[2001:db8::1]", undefined],
    ["1e100.net", undefined],
    ["0x.example.com", undefined],
  ];
  for (const [host, want] of cases) assert.equal(hostKind(host), want, host);
});

Deno.test("repositoryHosts() finds each host as restic would, per backend and URL-valued env key", () => {
  const none = new Map<string, string>();
  const hosts = (uri: string, backend: string, env = none) =>
    repositoryHosts(uri, backend, env).map((h) => `${h.key}=${h.host}`);
  assert.deepEqual(hosts("rest:http://u:p@evil@127.0.0.1:8000/repo", "rest"), [
    "RESTIC_REPOSITORY=127.0.0.1",
  ]);
  assert.deepEqual(hosts("rest:https://[::1]:8000/", "rest"), ["RESTIC_REPOSITORY=[::1]"]);
  assert.deepEqual(hosts("rest:http://host?x@127.0.0.1/", "rest"), ["RESTIC_REPOSITORY=host"]);
  assert.deepEqual(hosts("s3:http://169.254.169.254/bucket", "s3"), ["RESTIC_REPOSITORY=169.254.169.254"]);
  assert.deepEqual(hosts("s3:169.254.169.254:80/bucket", "s3"), ["RESTIC_REPOSITORY=169.254.169.254"]);
  assert.deepEqual(hosts("s3://localhost/bucket", "s3"), ["RESTIC_REPOSITORY=localhost"]);
  assert.deepEqual(hosts("sftp:user@127.0.0.1:/srv", "sftp"), ["RESTIC_REPOSITORY=127.0.0.1"]);
  assert.deepEqual(hosts("sftp://user@[::1]:22//srv", "sftp"), ["RESTIC_REPOSITORY=[::1]"]);
  assert.deepEqual(
    hosts(
      "swift:c:/p",
      "swift",
      new Map([["ST_AUTH", "http://169.254.169.254/auth/v1.0"], ["OS_AUTH_URL", ""]]),
    ),
    ["ST_AUTH=169.254.169.254"],
  );
  assert.deepEqual(hosts("b2:bucket:/p", "b2"), []);
});

Deno.test("hostProblem() admits local addresses only when allowed, and metadata services never", () => {
  const at = (host: string) => [{ key: "RESTIC_REPOSITORY", host }];
  assert.match(hostProblem(at("127.0.0.1"), false)!.message, /loopback.*allowLocalAddresses/);
  assert.equal(hostProblem(at("127.0.0.1"), true), undefined);
  assert.equal(hostProblem(at("[fe80::1]"), true), undefined);
  assert.match(hostProblem(at("169.254.169.254"), true)!.message, /cloud metadata service/);
  assert.match(hostProblem(at("0x7f000001"), true)!.message, /dotted quad/);
  assert.match(hostProblem(at("127.0.0.%31"), true)!.message, /plain ASCII/);
  assert.match(hostProblem(at("１２７.０.０.１"), true)!.message, /plain ASCII/);
  assert.match(hostProblem([{ key: "ST_AUTH", host: undefined }], true)!.message, /ST_AUTH must be a URL/);
  assert.equal(hostProblem(at("minio.storage.svc"), false), undefined);
});
