import assert from "node:assert/strict";
import { EXTRA_FLAG_PATTERN_SOURCE, normalizeExtraFlags } from "./restic_flags.ts";

const ok = (entries: string[]) => {
  const r = normalizeExtraFlags(entries);
  assert.ok(r.ok, JSON.stringify(r));
  return r.flags;
};
const problem = (entries: string[]) => {
  const r = normalizeExtraFlags(entries);
  assert.ok(!r.ok, `${JSON.stringify(entries)} was accepted`);
  return r.problem;
};

Deno.test("normalizeExtraFlags() sends each allowed flag as one token in one spelling, sorted", () => {
  assert.deepEqual(
    ok([
      "--pack-size 64",
      "--no-lock",
      "-o s3.connections=10",
      "--option=rest.connections=2",
      "--retry-lock=1m30s",
      "-o",
      "s3.storage-class=STANDARD_IA",
    ]),
    [
      "--no-lock",
      "--option=rest.connections=2",
      "--option=s3.connections=10",
      "--option=s3.storage-class=STANDARD_IA",
      "--pack-size=64",
      "--retry-lock=1m30s",
    ],
  );
  // Order in the spec does not change what is sent (so it does not change the input hash either).
  assert.deepEqual(
    ok(["-o s3.region=eu-1", "-o s3.connections=2"]),
    ok(["-o s3.connections=2", "-o s3.region=eu-1"]),
  );
  assert.deepEqual(ok([]), []);
});

Deno.test("normalizeExtraFlags() refuses every flag that runs a program, reads a file or changes credentials or the repo", () => {
  for (
    const bad of [
      `--password-command="sh -c 'touch /tmp/x; echo pw'"`,
      "--password-command=true",
      "--password-file=/etc/shadow",
      "-p /etc/shadow",
      "-o sftp.command=touch /tmp/x",
      "-o sftp.args=-oProxyCommand=x",
      "-o rclone.program=/bin/sh",
      "-o rclone.args=serve",
      "--option=sftp.command=x",
      "--repo=/elsewhere",
      "-r /elsewhere",
      "--repository-file=/x",
      "--cache-dir=/tmp",
      "--cacert=/etc/ssl/key.pem",
      "--tls-client-cert=/x",
      "--key-hint=abc",
      "--insecure-no-password",
      "--json",
      "--verbose",
      "--limit-upload=${HOME}",
      "--limit-upload=1 --password-command=x",
      "--limit-upload='1'",
      "--limit-upload=1#x",
      "--http-user-agent=a b",
      "--compression=max\\",
      "-o s3.unsafe-anonymous-auth=true",
      "-o s3.region=${AWS_SECRET_ACCESS_KEY}",
      "--no-lock=false",
      "--no-lockx",
      " --no-lock",
      "",
    ]
  ) {
    assert.match(problem([bad]), /not an allowed restic flag/, bad);
    assert.equal(new RegExp(EXTRA_FLAG_PATTERN_SOURCE).test(bad), false, bad);
  }
  assert.match(problem(["-o"]), /must be followed by/);
  assert.match(problem(["-o", "--no-lock"]), /must be followed by/);
  assert.match(problem(["-o", "sftp.command=touch /tmp/x"]), /must be followed by/);
  assert.match(problem(["--option", "rclone.program=sh"]), /must be followed by/);
  assert.match(problem(["s3.connections=2"]), /must follow -o/);
  assert.match(problem(["--limit-upload=1", "--limit-upload 2"]), /--limit-upload is given more than once/);
  assert.match(problem(["-o s3.region=a", "--option=s3.region=b"]), /-o s3.region is given more than once/);
});
