/**
 * Proves our `proto/` is a faithful subset of Backrest's own API at the pinned version: every service,
 * method, message, field (name, number, label, type, type name, JSON name, oneof, proto3 optional) and
 * enum value we declare exists upstream with the same meaning. Both sides are compiled by buf into
 * FileDescriptorSets, so the comparison reads descriptors, not text. Upstream comes from the Go module
 * proxy (`go mod download`), the same source the Backrest test peer is built from.
 */

import assert from "node:assert/strict";
import { clone, fromJson } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorSet,
  FileDescriptorSetSchema,
  type ServiceDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { buf } from "./tools/gen.ts";

const root = new URL("../", import.meta.url).pathname;

async function backrestVersion(): Promise<string> {
  const script = await Deno.readTextFile(`${root}tests/peers/build.sh`);
  const found = /^BACKREST_VERSION=(v[0-9.]+)$/m.exec(script)?.[1];
  if (!found) throw new Error("tests/peers/build.sh pins no BACKREST_VERSION");
  return found;
}

async function upstreamProtoDir(): Promise<string> {
  const version = await backrestVersion();
  const out = await new Deno.Command("go", {
    args: ["mod", "download", "-json", `github.com/garethgeorge/backrest@${version}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
  if (
    !out.success || typeof info !== "object" || info === null || !("Dir" in info) ||
    typeof info.Dir !== "string"
  ) {
    throw new Error(`go mod download failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return `${info.Dir}/proto`;
}

async function descriptorSet(dir: string): Promise<FileDescriptorSet> {
  const json: unknown = JSON.parse(
    new TextDecoder().decode(await buf(["build", dir, "--exclude-source-info", "-o", "-#format=json"])),
  );
  if (typeof json !== "object" || json === null) throw new Error("buf build gave no JSON object");
  // Options carry extensions (google.api.http) this registry does not know; they are not compared.
  return fromJson(FileDescriptorSetSchema, stripOptions(json), { ignoreUnknownFields: true });
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function stripOptions(value: unknown): Json {
  if (Array.isArray(value)) return value.map(stripOptions);
  if (typeof value === "object" && value !== null) {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (k !== "options") out[k] = stripOptions(v);
    return out;
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  return null;
}

interface Index {
  messages: Map<string, DescriptorProto>;
  enums: Map<string, EnumDescriptorProto>;
  services: Map<string, ServiceDescriptorProto>;
}

function index(set: FileDescriptorSet, onlyFiles?: Set<string>): Index {
  const idx: Index = { messages: new Map(), enums: new Map(), services: new Map() };
  const addMessage = (prefix: string, m: DescriptorProto) => {
    const name = `${prefix}.${m.name}`;
    idx.messages.set(name, m);
    for (const n of m.nestedType) addMessage(name, n);
    for (const e of m.enumType) idx.enums.set(`${name}.${e.name}`, e);
  };
  for (const file of set.file) {
    if (onlyFiles && !onlyFiles.has(file.name ?? "")) continue;
    const prefix = file.package ? `.${file.package}` : "";
    for (const m of file.messageType) addMessage(prefix, m);
    for (const e of file.enumType) idx.enums.set(`${prefix}.${e.name}`, e);
    for (const s of file.service) idx.services.set(`${prefix}.${s.name}`, s);
  }
  return idx;
}

/**
 * One kind of declaration compared by name (services and their methods, say): each of ours must exist
 * upstream, each of its members too, with equal `keys`; `more` finds any other difference of a member.
 * Returns the differences as readable lines, naming members as `<kind.member> <decl><kind.sep><member>`.
 */
function compareKind<D, M extends { name: string }>(
  kind: { decl: string; member: string; sep: string },
  ours: Map<string, D>,
  theirs: Map<string, D>,
  members: (d: D) => M[],
  keys: readonly (keyof M & string)[],
  more: (ours: D, up: D, member: M, upMember: M) => string | undefined = () => undefined,
): string[] {
  const problems: string[] = [];
  for (const [name, decl] of ours) {
    const up = theirs.get(name);
    if (!up) {
      problems.push(`${kind.decl} ${name} does not exist upstream`);
      continue;
    }
    for (const member of members(decl)) {
      const where = `${kind.member} ${name}${kind.sep}${member.name}`;
      const m = members(up).find((x) => x.name === member.name);
      if (!m) {
        problems.push(`${where} does not exist upstream`);
        continue;
      }
      for (const key of keys) {
        if (member[key] !== m[key]) problems.push(`${where}: ${key} ${member[key]} != upstream ${m[key]}`);
      }
      const other = more(decl, up, member, m);
      if (other) problems.push(`${where}: ${other}`);
    }
  }
  return problems;
}

/** Every difference between our declarations and upstream's, as readable lines (empty: compatible). */
function compare(ours: Index, theirs: Index): string[] {
  return [
    ...compareKind(
      { decl: "service", member: "method", sep: "/" },
      ours.services,
      theirs.services,
      (s: ServiceDescriptorProto) => s.method,
      ["inputType", "outputType", "clientStreaming", "serverStreaming"],
    ),
    ...compareKind(
      { decl: "message", member: "field", sep: "." },
      ours.messages,
      theirs.messages,
      (m: DescriptorProto) => m.field,
      ["number", "label", "type", "typeName", "jsonName", "proto3Optional"],
      (message, up, field, f) => {
        const ourOneof = field.oneofIndex === undefined
          ? undefined
          : message.oneofDecl[field.oneofIndex]?.name;
        const upOneof = f.oneofIndex === undefined ? undefined : up.oneofDecl[f.oneofIndex]?.name;
        return ourOneof === upOneof ? undefined : `oneof ${ourOneof} != upstream ${upOneof}`;
      },
    ),
    ...compareKind(
      { decl: "enum", member: "enum value", sep: "." },
      ours.enums,
      theirs.enums,
      (e: EnumDescriptorProto) => e.value,
      ["number"],
    ),
  ];
}

Deno.test("proto/ declares only what Backrest's pinned API has, with equal names, numbers and types", async (t) => {
  const [oursSet, theirsSet] = await Promise.all([
    descriptorSet(`${root}proto`),
    upstreamProtoDir().then(descriptorSet),
  ]);
  const ownFiles = new Set(oursSet.file.map((f) => f.name ?? "").filter((n) => !n.startsWith("google/")));
  const ours = index(oursSet, ownFiles);
  const theirs = index(theirsSet);

  await t.step("the declarations the operator relies on are there", () => {
    for (
      const m of [
        "AddRepo",
        "RemoveRepo",
        "CheckRepoExists",
        "GetConfig",
        "DoRepoTask",
        "GetSummaryDashboard",
      ]
    ) {
      assert.ok(ours.services.get(".v1.Backrest")?.method.some((x) => x.name === m), m);
    }
    assert.ok(ours.services.get(".v1.Authentication")?.method.some((x) => x.name === "Login"));
    assert.equal(ours.messages.get(".v1.Repo")?.field.length, theirs.messages.get(".v1.Repo")?.field.length);
  });

  await t.step("every declaration matches upstream", () => {
    assert.deepEqual(compare(ours, theirs), []);
  });

  await t.step("the comparison notices a changed number, type, enum value and a made-up method", () => {
    const mutated = clone(FileDescriptorSetSchema, oursSet);
    const config = mutated.file.find((f) => f.name === "v1/config.proto");
    const repo = config?.messageType.find((m) => m.name === "Repo");
    const password = repo?.field.find((f) => f.name === "password");
    const env = repo?.field.find((f) => f.name === "env");
    const clock = config?.messageType.find((m) => m.name === "Schedule")?.enumType[0]?.value[1];
    const service = mutated.file.find((f) => f.name === "v1/service.proto")?.service[0];
    assert.ok(password && env && clock && service);
    password.number = 30;
    env.label = 1; // LABEL_OPTIONAL instead of repeated
    clock.number = 9;
    service.method.push({ ...service.method[0]!, name: "SetConfig2" });
    const problems = compare(index(mutated, ownFiles), theirs);
    assert.equal(problems.length, 4, problems.join("\n"));
  });
});
